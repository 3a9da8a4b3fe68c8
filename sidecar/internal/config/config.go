// Package config loads filesync's configuration once: from a private flag set, then from the env twin of
// every flag not given on the command line (FILESYNC_<FLAG_IN_UPPER_SNAKE>; the flag wins), validated in
// one place. Errors name the flag or the environment variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gsurl"
	"github.com/filesync/filesync/sidecar/internal/hooks"
	"github.com/filesync/filesync/sidecar/internal/notify/topic"
)

// EnvPrefix starts every environment twin.
const EnvPrefix = "FILESYNC_"

// Config is the whole configuration.
type Config struct {
	Dir            string
	Remote         gsurl.Location
	Once           bool
	DryRun         bool
	PollInterval   time.Duration
	RescanInterval time.Duration
	Settle         time.Duration
	Excludes       []string
	// NoExec are the --no-exec globs: executable names under them are left out of the sync both ways
	// (filter.Filter.NoExec).
	NoExec []string
	// Trees are the --tree globs: directories whose remote changes are applied together (syncer.Options.Trees).
	Trees []string
	// Lazy are the --lazy globs: paths not needed before ready, filled in behind (syncer.Options.Lazy).
	Lazy             []string
	Delete           bool
	MaxDelete        int
	DeleteWindow     time.Duration
	Transfers        int
	RestoreTransfers int
	// CacheSize (--cache-size) bounds the bytes of the local lazy files; 0: no bound.
	CacheSize Size
	// MaxConflicts is how many conflict copies of one path are kept (the newest); 0: all.
	MaxConflicts    int
	StateDir        string
	Listen          string
	ShutdownTimeout time.Duration
	ProgressEvery   time.Duration
	LogFormat       string
	LogLevel        string
	// Notifications is the topic of the bucket's notifications (zero: poll the bucket every PollInterval).
	Notifications topic.Name
	// ReconcileInterval is how often the bucket is listed anyway when notifications are on.
	ReconcileInterval time.Duration
	// ReadThrough is the loopback address of the read-through (empty: off); ReadThroughIncludes the globs
	// of the paths it serves.
	ReadThrough         string
	ReadThroughIncludes []string
	// Peers is the DNS name of the replicas' headless Service (empty: no peers); PeerListen the address of
	// the peer listener (its port is the one peers are asked on); PeerSecret the shared secret, read from
	// PeerSecretFile.
	Peers          string
	PeerListen     string
	PeerSecretFile string
	PeerSecret     string
	// OnChange are the --on-change URLs told of every change this replica makes in the bucket
	// (internal/hooks); each is http or https with a host.
	OnChange []string
}

// ErrUsage marks configuration errors (exit code 2). ErrHelp is returned for -h/--help.
var (
	ErrUsage = errors.New("usage")
	ErrHelp  = flag.ErrHelp
)

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

type stringList []string

// Size is a number of bytes written with an optional unit: 1000 (bytes), 500MB, 20GiB.
type Size int64

var sizeUnits = map[string]int64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// String writes the size in the largest unit that holds it whole: 20GiB, 500MB, 1234B.
func (z *Size) String() string {
	for _, u := range []string{"TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "kB"} {
		if m := sizeUnits[u]; *z != 0 && int64(*z)%m == 0 {
			return strconv.FormatInt(int64(*z)/m, 10) + u
		}
	}
	return strconv.FormatInt(int64(*z), 10) + "B"
}

// Set reads a size: a whole number of bytes, or a number (a decimal fraction allowed) and a unit.
func (z *Size) Set(v string) error {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return fmt.Errorf("%q: unknown unit %q (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)", v, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || f < 0 || f*float64(mult) > math.MaxInt64/2 {
		return fmt.Errorf("%q: not a size (e.g. 500MB, 20GiB)", v)
	}
	*z = Size(f * float64(mult))
	return nil
}

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// EnvName returns the environment twin of a flag: poll-interval -> FILESYNC_POLL_INTERVAL.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses args (without the program name) and getenv. Usage text goes to out on --help.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	var location, notifications string
	fs := newFlagSet(&c, &location, &notifications)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, out)
			return c, ErrHelp
		}
		return c, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return c, usagef("unexpected argument %q (every setting is a flag; the one subcommand, %q, comes first)", fs.Arg(0), ConflictsCommand)
	}
	if err := applyEnv(fs, getenv); err != nil {
		return c, err
	}
	if err := c.validate(location); err != nil {
		return c, err
	}
	return c, c.validateNotifications(fs, notifications)
}

// newFlagSet declares every flag on a private flag set, bound to c.
func newFlagSet(c *Config, location, notifications *string) *flag.FlagSet {
	fs := flag.NewFlagSet("filesync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Dir, "dir", "", "the local directory to sync (the shared emptyDir mount); required")
	fs.StringVar(location, "remote", "", "where the files live: gs://BUCKET[/PREFIX]; required")
	fs.BoolVar(&c.Once, "once", false, "one full two-way pass, then exit")
	fs.BoolVar(&c.DryRun, "dry-run", false, "print the plan of one pass, change nothing")
	fs.DurationVar(&c.PollInterval, "poll-interval", 2*time.Second, "how often the bucket is checked for changes")
	fs.DurationVar(&c.RescanInterval, "rescan-interval", 5*time.Minute, "full local rescan, the safety net under fsnotify")
	fs.DurationVar(&c.Settle, "settle", 500*time.Millisecond, "a file must be quiet this long (and closed) before it is uploaded")
	fs.Var((*stringList)(&c.Excludes), "exclude", "glob relative to --dir (`**` allowed) never synced on either side; repeatable (env: comma-separated)")
	fs.Var((*stringList)(&c.Lazy), "lazy", "glob (as --exclude) of paths not needed before ready (media: uploads/): not downloaded by the restore, recorded as remote-only and fetched in the background, newest first, or by the read-through when asked for; repeatable (env: comma-separated)")
	fs.Var((*stringList)(&c.Trees), "tree", "glob (as --exclude) of directories whose changes from the bucket are held until they stop coming, staged and applied together in one burst (a plugin: plugins/*/); repeatable (env: comma-separated)")
	fs.Var((*stringList)(&c.NoExec), "no-exec", "glob (as --exclude) under which files a web server would run (x.php, x.php.jpg, .htaccess, ...) are never synced either way; repeatable (env: comma-separated)")
	fs.BoolVar(&c.Delete, "delete", true, "propagate deletions (only of files known to have been in sync)")
	fs.IntVar(&c.MaxDelete, "max-delete", 50, "the share (percent) of known files that may be deleted per --max-delete-window; a side missing more at once is a wipe, restored from the other")
	fs.DurationVar(&c.DeleteWindow, "max-delete-window", time.Hour, "the time over which deletes are counted against --max-delete")
	fs.IntVar(&c.Transfers, "transfers", 8, "parallel uploads/downloads")
	fs.IntVar(&c.RestoreTransfers, "restore-transfers", 64, "parallel downloads of the restore (the passes before ready)")
	fs.Var(&c.CacheSize, "cache-size", "with --lazy: the most bytes the local lazy files may hold (e.g. 20GiB; units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB); the fill stops there and the least recently read are evicted (the read-through fetches them again); 0: no bound")
	fs.IntVar(&c.MaxConflicts, "max-conflicts", 10, "conflict copies kept per path under .filesync/conflicts/ (the newest; the oldest beyond it are deleted); 0: keep all")
	fs.StringVar(&c.StateDir, "state-dir", "", "directory keeping the last-synced state across container restarts")
	fs.StringVar(&c.Listen, "listen", ":8090", "address of /healthz, /readyz and /metrics (empty: none)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 25*time.Second, "how long SIGTERM may spend flushing pending uploads")
	fs.DurationVar(&c.ProgressEvery, "progress-interval", 5*time.Second, "how often the restore (the first pass) logs its progress")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(notifications, "notifications", "", "learn remote changes from the bucket's Pub/Sub notifications on this topic, projects/PROJECT/topics/TOPIC, instead of polling")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", 10*time.Minute, "with --notifications: how often the bucket is listed anyway, the safety net under the notifications")
	fs.StringVar(&c.ReadThrough, "read-through", "", "loopback HOST:PORT serving GET/HEAD /<path under --dir>: local file, else the bucket, else a peer, else 404 (empty: off)")
	fs.Var((*stringList)(&c.ReadThroughIncludes), "read-through-include", "glob (as --exclude) of the paths the read-through serves; repeatable (env: comma-separated); required with --read-through")
	fs.StringVar(&c.Peers, "peers", "", "DNS name of the replicas' headless Service: the read-through asks the other replicas on a bucket miss (empty: no peers)")
	fs.StringVar(&c.PeerListen, "peer-listen", ":8092", "address of the peer listener (with --peers); its port is the one peers are asked on")
	fs.StringVar(&c.PeerSecretFile, "peer-secret-file", "", "file holding the secret peers must present (required with --peers)")
	fs.Var((*stringList)(&c.OnChange), "on-change", "http(s) URL POSTed a JSON batch of the changes this replica made in the bucket (uploads, deletes), e.g. to purge a CDN; repeatable (env: comma-separated)")

	return fs
}

// applyEnv sets every flag that was not given on the command line from its environment twin.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		v := getenv(name)
		if err != nil || given[f.Name] || v == "" {
			return
		}
		values := []string{v}
		if _, list := f.Value.(*stringList); list {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if serr := fs.Set(f.Name, strings.TrimSpace(one)); serr != nil {
				err = usagef("%s=%q: %v", name, v, serr)
				return
			}
		}
	})
	return err
}

func (c *Config) validate(location string) error {
	if c.Dir == "" {
		return usagef("--dir (or %s) is required", EnvName("dir"))
	}
	if fi, err := os.Stat(c.Dir); err != nil {
		return usagef("--dir %s: %v", c.Dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return usagef("--dir %s: not a directory", c.Dir)
	}
	if location == "" {
		return usagef("--remote (or %s) is required", EnvName("remote"))
	}
	r, err := gsurl.Parse(location)
	if err != nil {
		return usagef("--remote %v", err)
	}
	c.Remote = r
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll-interval", c.PollInterval}, {"rescan-interval", c.RescanInterval}, {"shutdown-timeout", c.ShutdownTimeout},
		{"max-delete-window", c.DeleteWindow}, {"progress-interval", c.ProgressEvery}} {
		if d.v <= 0 {
			return usagef("--%s %v: must be positive", d.name, d.v)
		}
	}
	if c.Settle < 0 {
		return usagef("--settle %v: must not be negative", c.Settle)
	}
	if c.MaxDelete < 0 || c.MaxDelete > 100 {
		return usagef("--max-delete %d: must be a percentage from 0 to 100", c.MaxDelete)
	}
	if c.Transfers < 1 || c.Transfers > 256 {
		return usagef("--transfers %d: must be from 1 to 256", c.Transfers)
	}
	if c.RestoreTransfers < 1 || c.RestoreTransfers > 256 {
		return usagef("--restore-transfers %d: must be from 1 to 256", c.RestoreTransfers)
	}
	if c.CacheSize > 0 && len(c.Lazy) == 0 {
		return usagef("--cache-size %s: needs --lazy (only lazy files are evicted)", c.CacheSize.String())
	}
	if c.MaxConflicts < 0 || c.MaxConflicts > 10000 {
		return usagef("--max-conflicts %d: must be from 0 (keep all) to 10000", c.MaxConflicts)
	}
	f, err := filter.New(c.Excludes)
	if err != nil {
		return usagef("--exclude: %v", err)
	}
	if _, err := f.WithNoExec(c.NoExec); err != nil {
		return usagef("--no-exec: %v", err)
	}
	if _, err := filter.New(c.Trees); err != nil {
		return usagef("--tree: %v", err)
	}
	if _, err := filter.New(c.Lazy); err != nil {
		return usagef("--lazy: %v", err)
	}
	if c.StateDir != "" {
		if fi, err := os.Stat(c.StateDir); err != nil {
			return usagef("--state-dir %s: %v", c.StateDir, errors.Unwrap(err))
		} else if !fi.IsDir() {
			return usagef("--state-dir %s: not a directory", c.StateDir)
		}
	}
	if c.Listen != "" {
		if err := checkListen(c.Listen); err != nil {
			return usagef("--listen %q: %v", c.Listen, err)
		}
	}
	if err := c.validateReadThrough(); err != nil {
		return err
	}
	for _, u := range c.OnChange {
		if _, err := hooks.CheckURL(u); err != nil {
			return usagef("--on-change %v", err)
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return usagef("--log-format %q: want json or text", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return usagef("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// validateNotifications parses --notifications; --reconcile-interval means something only with it.
func (c *Config) validateNotifications(fs *flag.FlagSet, notifications string) error {
	if c.ReconcileInterval <= 0 {
		return usagef("--reconcile-interval %v: must be positive", c.ReconcileInterval)
	}
	if notifications == "" {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "reconcile-interval" })
		if given {
			return usagef("--reconcile-interval needs --notifications (without it the bucket is polled every --poll-interval)")
		}
		return nil
	}
	t, err := topic.Parse(notifications)
	if err != nil {
		return usagef("--notifications %v", err)
	}
	c.Notifications = t
	return nil
}

// validateReadThrough checks --read-through and the peer flags, and reads the peers' secret.
func (c *Config) validateReadThrough() error {
	if c.ReadThrough == "" {
		switch {
		case len(c.ReadThroughIncludes) > 0:
			return usagef("--read-through-include needs --read-through")
		case c.Peers != "":
			return usagef("--peers needs --read-through")
		}
		return nil
	}
	if err := checkListen(c.ReadThrough); err != nil {
		return usagef("--read-through %q: %v", c.ReadThrough, err)
	}
	if host, _, _ := net.SplitHostPort(c.ReadThrough); !loopback(host) {
		return usagef("--read-through %q: must be a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT): it can read the bucket", c.ReadThrough)
	}
	if len(c.ReadThroughIncludes) == 0 {
		return usagef("--read-through-include is required with --read-through (WordPress: uploads/**)")
	}
	if _, err := filter.New(c.ReadThroughIncludes); err != nil {
		return usagef("--read-through-include: %v", err)
	}
	if c.Peers == "" {
		return nil
	}
	if strings.ContainsAny(c.Peers, " /:") {
		return usagef("--peers %q: want a DNS name (a headless Service)", c.Peers)
	}
	if err := checkListen(c.PeerListen); err != nil {
		return usagef("--peer-listen %q: %v", c.PeerListen, err)
	}
	if _, port, _ := net.SplitHostPort(c.PeerListen); port == "0" {
		return usagef("--peer-listen %q: needs a fixed port (the peers are asked on it)", c.PeerListen)
	}
	if c.PeerSecretFile == "" {
		return usagef("--peer-secret-file is required with --peers: the peer listener is on the pod IP")
	}
	b, err := os.ReadFile(c.PeerSecretFile)
	if err != nil {
		return usagef("--peer-secret-file %s: %v", c.PeerSecretFile, errors.Unwrap(err))
	}
	c.PeerSecret = strings.TrimSpace(string(b))
	if len(c.PeerSecret) < 16 {
		return usagef("--peer-secret-file %s: the secret must be at least 16 characters", c.PeerSecretFile)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkListen accepts HOST:PORT, [IPv6]:PORT and :PORT, with a port from 0 to 65535.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err + " (want HOST:PORT or :PORT)")
	}
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q: not a host name or IP address", host)
	}
	return nil
}

// UnknownEnv returns the FILESYNC_ variables of environ that are no flag's twin (a misspelling is
// otherwise silently ignored). Variables Kubernetes injects for a Service named filesync
// (FILESYNC_SERVICE_HOST, FILESYNC_PORT_8090_TCP, ...) are not reported.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	fs := newFlagSet(&Config{}, new(string), new(string))
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(f.Name)] = true })
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] {
			continue
		}
		rest := strings.TrimPrefix(name, EnvPrefix)
		if rest == "PORT" || strings.HasPrefix(rest, "PORT_") || strings.HasPrefix(rest, "SERVICE_") {
			continue
		}
		out = append(out, name)
	}
	return out
}

func printUsage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, "Usage: filesync --dir PATH --remote gs://BUCKET[/PREFIX] [flags]\n"+
		"       filesync conflicts --remote gs://BUCKET[/PREFIX] [--format table|json]   (list the conflict copies; --help)\n\n")
	fmt.Fprintf(out, "Keeps a directory in two-way sync with a Google Cloud Storage location, safely for N replicas.\n")
	fmt.Fprintf(out, "Every flag has an environment twin %s<FLAG_IN_UPPER_SNAKE>; the flag wins.\n\nFlags:\n", EnvPrefix)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%-18s %s%s\n      env %s\n", f.Name, f.Usage, def, EnvName(f.Name))
	})
	fmt.Fprintf(out, "\nSTORAGE_EMULATOR_HOST (and PUBSUB_EMULATOR_HOST) point the clients at emulators; otherwise Application\n"+
		"Default Credentials (Workload Identity on GKE) are used. POD_NAME names this replica in conflict copies\n"+
		"and its Pub/Sub subscription.\n"+
		"Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n")
}
