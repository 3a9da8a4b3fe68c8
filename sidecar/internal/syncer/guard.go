package syncer

import (
	"fmt"
	"log/slog"

	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// guard carries the delete guard and the wipe rule from plan to plan (docs/design.md, "Safety rules"): the
// --max-delete budget in force, the last set of withheld deletes and the wipes already reported, so that
// each new set and each episode is reported once, not once per pass.
//
// Owner: the goroutine running passes. The planner is given window and returns the next one.
type guard struct {
	window  plan.DeleteWindow // the --max-delete budget in force
	blocked string            // the deletes the guard withheld last (blockedKey)
	wiped   [2]bool           // local, remote: a wipe already reported
}

// needsWalk reports whether a targeted plan must be checked against a whole walk first: it deletes
// remotely, finds the directory wiped, or withholds a new set of remote deletes. Each of those judges
// files that are missing locally, and a lost event would look exactly like a missing file.
func (g *guard) needsWalk(p plan.Plan) bool {
	if p.Count(plan.DeleteRemote) > 0 || p.LocalWiped && !g.wiped[0] {
		return true
	}
	for _, a := range p.BlockedDeletes {
		if a.Op == plan.DeleteRemote {
			return blockedKey(p) != g.blocked
		}
	}
	return false
}

func blockedKey(p plan.Plan) string {
	if len(p.BlockedDeletes) == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%s:%s", len(p.BlockedDeletes), p.BlockedDeletes[0].Path, p.BlockedDeletes[len(p.BlockedDeletes)-1].Path)
}

// after takes in plan p, whose deletes carried out were deleted: the budget spent, and once per new set
// of withheld deletes and per wipe episode a line and a count.
func (g *guard) after(p plan.Plan, deleted int, maxDelete int, m *metrics.Metrics, log *slog.Logger) {
	g.window = p.Window
	g.window.Deleted += deleted
	g.reportBlocked(p, maxDelete, m, log)
	g.reportWipes(p, maxDelete, m, log)
}

// reportBlocked says once, for each new set of withheld deletes, that the guard tripped; the gauge stays 1
// while deletes are withheld.
func (g *guard) reportBlocked(p plan.Plan, maxDelete int, m *metrics.Metrics, log *slog.Logger) {
	if len(p.BlockedDeletes) == 0 {
		m.DeleteBlocked.Set(0)
		g.blocked = ""
		return
	}
	m.DeleteBlocked.Set(1)
	key := blockedKey(p)
	if key == g.blocked {
		return
	}
	g.blocked = key
	m.DeleteGuard.Inc()
	log.Error("refusing a mass delete: nothing deleted (raise --max-delete, or wait for --max-delete-window, if this is intended)",
		"deletes", len(p.BlockedDeletes), "deleted_in_window", p.Window.Deleted, "known_at_window_start", p.Window.Known,
		"window_start", p.Window.Start, "max_delete_percent", maxDelete, "first", p.BlockedDeletes[0].Path)
}

// reportWipes says once per episode that a side was wiped and is being restored.
func (g *guard) reportWipes(p plan.Plan, maxDelete int, m *metrics.Metrics, log *slog.Logger) {
	for i, w := range []struct {
		side, what string
		wiped      bool
	}{{"local", "the local directory", p.LocalWiped}, {"remote", "the bucket", p.RemoteWiped}} {
		if w.wiped && !g.wiped[i] {
			m.Wipes.WithLabelValues(w.side).Inc()
			log.Warn(w.what+" lost more than --max-delete of the known files at once: restoring it from the other side, deleting nothing",
				"known_files", p.Known, "max_delete_percent", maxDelete)
		}
		g.wiped[i] = w.wiped
	}
}
