package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/filesync/filesync/sidecar/internal/config"
	"github.com/filesync/filesync/sidecar/internal/conflict"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

// conflictRow is one line of `filesync conflicts`; a name under the folder that conflict.Parse does not
// read (written by hand, or by an older filesync with a dotted replica name) is listed with its name as
// the path and no replica or time, so nothing there is hidden.
type conflictRow struct {
	Path    string    `json:"path"`
	Replica string    `json:"replica,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Size    int64     `json:"size"`
	Object  string    `json:"object"` // gs://BUCKET/NAME
}

// listConflicts is `filesync conflicts`: one listing of PREFIX/.filesync/conflicts/, printed as a table
// (or JSON), by path then time.
func listConflicts(ctx context.Context, env Env, args []string) error {
	cfg, err := config.LoadConflicts(args, env.Getenv, env.Stdout)
	if err != nil {
		return err
	}
	client, err := gcsstore.NewClient(ctx, env.ClientOptions...)
	if err != nil {
		return err
	}
	defer client.Close()
	store := gcsstore.New(client, cfg.Remote, nil)
	objs, err := store.ListPrefix(ctx, conflict.Dir)
	if err != nil {
		return fmt.Errorf("conflicts: %w", err)
	}
	rows := make([]conflictRow, 0, len(objs))
	for _, o := range objs {
		r := conflictRow{Path: o.Name[len(conflict.Dir):], Size: o.Size, Object: "gs://" + cfg.Remote.Bucket + "/" + store.Name(o.Name)}
		if c, ok := conflict.Parse(o.Name); ok {
			r.Path, r.Replica, r.Time = c.Path, c.Pod, c.Time
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b conflictRow) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), a.Time.Compare(b.Time), cmp.Compare(a.Object, b.Object))
	})
	if cfg.Format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PATH\tREPLICA\tTIME\tSIZE\tOBJECT")
	for _, r := range rows {
		replica, at := "-", "-"
		if r.Replica != "" {
			replica, at = r.Replica, r.Time.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", printable(r.Path), printable(replica), at, r.Size, printable(r.Object))
	}
	return w.Flush()
}

// printable quotes a name from the bucket (untrusted) that holds a character a terminal would act on or
// a tab that would break the table.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
