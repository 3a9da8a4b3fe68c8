package config

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/filesync/filesync/sidecar/internal/gsurl"
)

// ConflictsCommand is the subcommand that lists the conflict copies in the bucket: `filesync conflicts
// --remote gs://BUCKET[/PREFIX]`, the first argument.
const ConflictsCommand = "conflicts"

// Conflicts is the configuration of `filesync conflicts`.
type Conflicts struct {
	Remote gsurl.Location
	Format string // table or json
}

// LoadConflicts parses the arguments after "conflicts". --remote has its environment twin
// (FILESYNC_REMOTE, as the sidecar's, so the command runs as is in the sidecar's container); --format has
// none.
func LoadConflicts(args []string, getenv func(string) string, out io.Writer) (Conflicts, error) {
	var c Conflicts
	var location string
	fs := flag.NewFlagSet("filesync conflicts", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&location, "remote", "", "the sync's location, gs://BUCKET[/PREFIX]; required")
	fs.StringVar(&c.Format, "format", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printConflictsUsage(fs, out)
			return c, ErrHelp
		}
		return c, usagef("conflicts: %v", err)
	}
	if fs.NArg() > 0 {
		return c, usagef("conflicts: unexpected argument %q", fs.Arg(0))
	}
	if location == "" {
		location = getenv(EnvName("remote"))
	}
	if location == "" {
		return c, usagef("conflicts: --remote (or %s) is required", EnvName("remote"))
	}
	r, err := gsurl.Parse(location)
	if err != nil {
		return c, usagef("conflicts: --remote %v", err)
	}
	c.Remote = r
	switch c.Format {
	case "table", "json":
	default:
		return c, usagef("conflicts: --format %q: want table or json", c.Format)
	}
	return c, nil
}

func printConflictsUsage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, "Usage: filesync conflicts --remote gs://BUCKET[/PREFIX] [--format table|json]\n\n"+
		"Lists the conflict copies under PREFIX/.filesync/conflicts/ (<path>.<replica>.<unix-time>): the path each\n"+
		"was the losing local version of, the replica that preserved it, when, and its size. Read-only.\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%-8s %s%s\n", f.Name, f.Usage, def)
	})
	fmt.Fprintf(out, "\n--remote falls back to %s. Exit codes: 0 success, 1 runtime failure (the bucket\n"+
		"cannot be listed), 2 usage error.\n", EnvName("remote"))
}
