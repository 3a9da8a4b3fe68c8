package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/filesync/filesync/sidecar/internal/conflict"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// preserveConflict keeps the local version of path in the bucket as a conflict copy,
// .filesync/conflicts/<path>.<pod>.<unix-time> (conflict.Name), unless a copy of path with the same
// bytes (size and CRC32C) is there already: N replicas losing the same bytes store them once. Then, with
// --max-conflicts, the oldest copies of path beyond that many are deleted (docs/design.md, "Sync
// semantics"). It runs on a worker: one listing of path's copies, at most one upload, the deletes.
func (s *Syncer) preserveConflict(ctx context.Context, path string, local snapshot.File) error {
	copies, err := s.conflictCopies(ctx, path)
	if err != nil {
		return fmt.Errorf("preserve conflict copy: %w", err)
	}
	for _, c := range copies {
		if c.Size == local.Size && c.CRC32C == local.CRC32C {
			s.m.Conflicts.Inc()
			s.log.Warn("conflict: the remote version keeps the path; the local one is already preserved",
				"path", path, "conflict_copy", s.store.Name(c.Name))
			return nil
		}
	}
	fh, err := s.dir.OpenFile(path, local.Stamp)
	if err != nil {
		return err
	}
	defer fh.Close()
	at := s.now()
	name := conflict.Name(path, s.opt.Pod, at)
	// The copy's Content-Type is its path's, not its .<pod>.<unix-time> name's.
	c := gcsstore.Content{R: fh, Size: local.Size, CRC32C: local.CRC32C, ModTime: time.Unix(0, local.ModTime), TypeOf: path}
	o, err := s.store.Upload(ctx, name, c, 0)
	if err != nil {
		return fmt.Errorf("preserve conflict copy: %w", err)
	}
	s.m.Conflicts.Inc()
	s.log.Warn("conflict: the remote version keeps the path; the local one is preserved",
		"path", path, "conflict_copy", s.store.Name(name))
	s.dropOldConflicts(ctx, path, append(copies, conflictCopy{Object: o, at: at.Truncate(time.Second)}))
	return nil
}

// conflictCopy is one conflict copy of a path: its object and the time its name says.
type conflictCopy struct {
	gcsstore.Object
	at time.Time
}

// conflictCopies lists the conflict copies of path (the listing of its prefix also holds the copies of
// longer paths, such as path.bak's: the names are parsed and compared).
func (s *Syncer) conflictCopies(ctx context.Context, path string) ([]conflictCopy, error) {
	objs, err := s.store.ListPrefix(ctx, conflict.Prefix(path))
	if err != nil {
		return nil, err
	}
	var out []conflictCopy
	for _, o := range objs {
		if c, ok := conflict.Parse(o.Name); ok && c.Path == path {
			out = append(out, conflictCopy{Object: o, at: c.Time})
		}
	}
	return out, nil
}

// dropOldConflicts deletes the oldest of path's copies (by the time in their names, then by name) beyond
// --max-conflicts. The new copy is kept either way; a copy that cannot be deleted is logged and left for
// the next conflict of the path to try again, and one deleted meanwhile (another replica capping the same
// path) is not an error.
func (s *Syncer) dropOldConflicts(ctx context.Context, path string, copies []conflictCopy) {
	if s.opt.MaxConflicts <= 0 || len(copies) <= s.opt.MaxConflicts {
		return
	}
	slices.SortFunc(copies, func(a, b conflictCopy) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.Name, b.Name))
	})
	for _, c := range copies[:len(copies)-s.opt.MaxConflicts] {
		err := s.store.Delete(ctx, c.Name, c.Generation)
		switch {
		case err == nil:
			s.m.ConflictsDropped.Inc()
			s.log.Info("deleted the oldest conflict copy (--max-conflicts)", "path", path,
				"conflict_copy", s.store.Name(c.Name), "max_conflicts", s.opt.MaxConflicts)
		case errors.Is(err, gcsstore.ErrPrecondition):
		default:
			s.log.Warn("could not delete an old conflict copy; the next conflict of the path tries again",
				"path", path, "conflict_copy", s.store.Name(c.Name), "err", err)
		}
	}
}
