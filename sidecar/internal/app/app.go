// Package app wires filesync together: configuration, logger, storage client, directory, state, syncer,
// watcher and HTTP server. Run is main without os.Exit, so it can be tested.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/config"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/hooks"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/notify"
	"github.com/filesync/filesync/sidecar/internal/readthrough"
	"github.com/filesync/filesync/sidecar/internal/server"
	"github.com/filesync/filesync/sidecar/internal/state"
	"github.com/filesync/filesync/sidecar/internal/syncer"
	"github.com/filesync/filesync/sidecar/internal/watch"
)

// Env is the process environment Run works in.
type Env struct {
	Args    []string // without the program name
	Getenv  func(string) string
	Environ func() []string // for warnings about unknown FILESYNC_ variables; nil: none
	Stdout  io.Writer
	Stderr  io.Writer
	Version string
	// ClientOptions are passed to the storage client (tests); STORAGE_EMULATOR_HOST and ADC need none.
	ClientOptions []option.ClientOption
	// Listening, if set, is told the address the HTTP server listens on.
	Listening func(addr string)
}

// ExitCode maps Run's error to the process exit code: 0 success, 2 usage, 1 anything else. It prints the
// error (one line) to stderr.
func ExitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, config.ErrHelp):
		return 0
	case errors.Is(err, config.ErrUsage):
		fmt.Fprintf(stderr, "filesync: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "filesync: %v\n", err)
		return 1
	}
}

// Run runs filesync until ctx is done (SIGTERM), or for one pass with --once / --dry-run; `filesync
// conflicts ...` lists the conflict copies instead.
func Run(ctx context.Context, env Env) error {
	if len(env.Args) > 0 && env.Args[0] == config.ConflictsCommand {
		return listConflicts(ctx, env, env.Args[1:])
	}
	cfg, err := config.Load(env.Args, env.Getenv, env.Stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg, env.Stderr).With("component", "filesync")
	log.Info("starting", "version", env.Version, "dir", cfg.Dir, "remote", cfg.Remote.String(),
		"once", cfg.Once, "dry_run", cfg.DryRun, "excludes", cfg.Excludes, "trees", cfg.Trees, "no_exec", cfg.NoExec,
		"lazy", cfg.Lazy, "cache_size_bytes", int64(cfg.CacheSize))
	if env.Environ != nil {
		for _, name := range config.UnknownEnv(env.Environ()) {
			log.Warn("ignoring an environment variable that is no flag's twin (misspelled?)", "name", name)
		}
	}

	f, err := filter.New(cfg.Excludes)
	if err != nil {
		return fmt.Errorf("%w: --exclude: %w", config.ErrUsage, err)
	}
	if f, err = f.WithNoExec(cfg.NoExec); err != nil {
		return fmt.Errorf("%w: --no-exec: %w", config.ErrUsage, err)
	}
	trees, err := filter.New(cfg.Trees)
	if err != nil {
		return fmt.Errorf("%w: --tree: %w", config.ErrUsage, err)
	}
	var lazy *filter.Filter
	if len(cfg.Lazy) > 0 {
		if lazy, err = filter.New(cfg.Lazy); err != nil {
			return fmt.Errorf("%w: --lazy: %w", config.ErrUsage, err)
		}
		if cfg.ReadThrough == "" && !cfg.Once && !cfg.DryRun {
			log.Warn("--lazy without --read-through: a lazy file is missing here until the background fill brings it", "lazy", cfg.Lazy)
		}
	}
	dir, err := localfs.Open(cfg.Dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	base, discarded, err := state.Open(cfg.StateDir, cfg.Remote.String())
	if err != nil {
		return err
	}
	if discarded {
		log.Warn("ignoring state written for another remote or unreadable; starting without a base (no deletes until in sync)")
	}
	client, err := gcsstore.NewClient(ctx, env.ClientOptions...)
	if err != nil {
		return err
	}
	defer client.Close()
	m := metrics.New()
	store := gcsstore.New(client, cfg.Remote, func(op string) { m.GCSRequests.WithLabelValues(op).Inc() })
	notifications := cfg.Notifications.String() != "" && !cfg.Once && !cfg.DryRun
	poll := cfg.PollInterval
	switch {
	case notifications:
		// The loop's poll becomes the reconcile: a listing every --reconcile-interval (a pass only when it
		// found something the notifications did not say).
		poll = cfg.ReconcileInterval
		log.Info("remote changes: from bucket notifications", "topic", cfg.Notifications.String(),
			"reconcile_interval", cfg.ReconcileInterval)
	case cfg.Notifications.String() != "":
		log.Info("remote changes: --notifications is not used by --once or --dry-run; listing the bucket")
	default:
		log.Info("remote changes: polling the bucket", "poll_interval", cfg.PollInterval)
	}
	pod := env.Getenv("POD_NAME")
	if pod == "" {
		pod, _ = os.Hostname()
	}
	opt := syncer.Options{
		PollInterval: poll, Notified: notifications, RescanInterval: cfg.RescanInterval, Settle: cfg.Settle,
		TreeQuiet: max(cfg.Settle, time.Second), Trees: trees, Lazy: lazy, CacheSize: int64(cfg.CacheSize),
		Delete: cfg.Delete, MaxDelete: cfg.MaxDelete, DeleteWindow: cfg.DeleteWindow, Transfers: cfg.Transfers,
		RestoreTransfers: cfg.RestoreTransfers, MaxConflicts: cfg.MaxConflicts,
		Pod: pod, ProgressInterval: cfg.ProgressEvery, OnProgress: terminalProgress(cfg, env.Stderr),
	}
	var h *hooks.Sender
	if len(cfg.OnChange) > 0 && !cfg.DryRun {
		h, err = hooks.New(hooks.Options{URLs: cfg.OnChange, Replica: pod, Bucket: cfg.Remote.Bucket, Prefix: cfg.Remote.Prefix,
			Metrics: m, Log: log.With("component", "hooks")})
		if err != nil {
			return fmt.Errorf("%w: --on-change %w", config.ErrUsage, err)
		}
		// On the way out through an error; the normal ends close it within the shutdown budget first.
		defer h.Close(expired())
		opt.OnChange = func(c syncer.Change) { h.Notify(hookEvent(c)) }
	}
	s := syncer.New(dir, store, base, f, m, log, opt)

	if cfg.DryRun {
		p, err := s.DryRun(ctx)
		if err != nil {
			return err
		}
		fmt.Fprint(env.Stdout, p.String())
		fmt.Fprintf(env.Stdout, "# dry run: %d actions, nothing changed\n", len(p.Actions))
		return nil
	}
	if cfg.Once {
		if err := store.CheckBucket(ctx); err != nil {
			return err
		}
		err := s.Once(ctx)
		if terminalProgress(cfg, env.Stderr) != nil {
			fmt.Fprintln(env.Stderr) // end the progress line
		}
		if line := s.LazyLeft(); err == nil && line != "" {
			log.Info("--once restored the eager files only (--lazy): the lazy ones stay in the bucket", "status", line)
		}
		closeHooks(ctx, h, time.Now().Add(cfg.ShutdownTimeout), log)
		return err
	}
	if err := waitForBucket(ctx, store, log); err != nil {
		return err
	}
	var n *notify.Notifier
	if notifications {
		n, err = notify.New(ctx, notify.Options{
			Topic: cfg.Notifications, Scope: notify.Scope{Bucket: cfg.Remote.Bucket, Prefix: cfg.Remote.Prefix},
			Pod:       env.Getenv("POD_NAME"),
			Apply:     func(ctx context.Context, c notify.Change) error { return s.ApplyRemote(ctx, syncer.RemoteChange(c)) },
			Reconcile: s.Reconcile, Metrics: m, Log: log.With("component", "notify"),
		})
		if err != nil {
			return err
		}
	}
	return serve(ctx, cfg, env, log, f, dir, s, m, n, h)
}

// hookEvent is a committed change as the hooks send it.
func hookEvent(c syncer.Change) hooks.Event {
	op := hooks.OpUpload
	if c.Deleted {
		op = hooks.OpDelete
	}
	return hooks.Event{Path: c.Path, Op: op, Generation: c.Generation, Time: c.Time}
}

// closeHooks delivers the change events still waiting, until deadline but for at least minHookFlush (the
// flush may have spent the budget producing them); what is left then is counted and logged by Close.
func closeHooks(ctx context.Context, h *hooks.Sender, deadline time.Time, log *slog.Logger) {
	if h == nil {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(time.Until(deadline), minHookFlush))
	defer cancel()
	start := time.Now()
	if left := h.Close(hctx); left == 0 {
		log.Info("change hooks delivered", "duration", time.Since(start).Round(time.Millisecond))
	}
}

// minHookFlush is the least time the change hooks get at shutdown.
const minHookFlush = 2 * time.Second

// expired returns a context that is already done.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// probes answers /healthz and /readyz. With notifications the loop starts only once the subscription
// exists (so the first listing comes after it); until then /readyz says what it waits for and /healthz
// answers 200: the process is alive and retrying with backoff, and a restart would only hide the error
// line behind a crash loop (the startup probe's budget still bounds the wait).
type probes struct {
	s       *syncer.Syncer
	n       *notify.Notifier // nil without notifications
	w       unwatched
	looping atomic.Bool // the sync loop has been started
}

// unwatched is what /readyz asks the watcher.
type unwatched interface{ Unwatched() watch.Unwatched }

var _ unwatched = (*watch.Watcher)(nil)

func (p *probes) Ready() bool { return p.looping.Load() && p.s.Ready() }

func (p *probes) NotReadyReason() string {
	if !p.looping.Load() && p.n != nil {
		return p.n.Waiting()
	}
	return p.s.NotReadyReason()
}

// Warning is what /readyz adds whatever readiness says: the lazy files not local yet (readiness never
// waits for them), and the directories the watcher cannot watch (yet): readiness does not wait for them,
// as the periodic rescan covers them, but a pod whose changes there sync only every --rescan-interval
// says so.
func (p *probes) Warning() string {
	var lines []string
	if p.s != nil {
		if line := p.s.LazyStatus(); line != "" {
			lines = append(lines, line)
		}
	}
	switch u := p.w.Unwatched(); u.Count {
	case 0:
	case 1:
		lines = append(lines, fmt.Sprintf("warning: 1 directory not watched (%s): the periodic rescan covers it", u.First))
	default:
		lines = append(lines, fmt.Sprintf("warning: %d directories not watched (first: %s): the periodic rescan covers them", u.Count, u.First))
	}
	return strings.Join(lines, "\n")
}

func (p *probes) Healthy() bool {
	if !p.looping.Load() && p.n != nil {
		return true
	}
	return p.s.Healthy()
}

// serve runs the HTTP server, the watcher and the sync loop; on cancellation it flushes pending uploads
// within --shutdown-timeout, then delivers the change hooks still waiting (closeHooks).
func serve(ctx context.Context, cfg config.Config, env Env, log *slog.Logger, f *filter.Filter, dir *localfs.Dir,
	s *syncer.Syncer, m *metrics.Metrics, n *notify.Notifier, h *hooks.Sender) error {
	w, err := watch.New(cfg.Dir, f, log.With("component", "watch"),
		watch.ReportUnwatched(func(n int) { m.WatchUnwatched.Set(float64(n)) }))
	if err != nil {
		return err
	}
	p := &probes{s: s, n: n, w: w}
	var srv *http.Server
	srvErr := make(chan error, 3)
	rtServers, err := startReadThrough(cfg, env, log, f, dir, s, m, srvErr)
	if err != nil {
		return err
	}
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
		}
		if env.Listening != nil {
			env.Listening(ln.Addr().String())
		}
		srv = server.New(cfg.Listen, p, m.Handler())
		go func() { srvErr <- srv.Serve(ln) }()
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		w.Run(loopCtx, func(h watch.Hint) {
			if h.Overflow {
				m.WatchOverflows.Inc()
			}
			s.HintLocal(h)
		})
	}()
	loopDone := make(chan error, 1)
	notifyDone := make(chan struct{})
	go func() {
		if n == nil {
			close(notifyDone)
		} else {
			// The subscription first: every change after it is notified, every change before it is in the
			// first listing.
			if err := n.Subscribe(loopCtx); err != nil {
				close(notifyDone)
				loopDone <- nil // stopped before it was subscribed
				return
			}
			go func() {
				defer close(notifyDone)
				_ = n.Run(loopCtx)
			}()
		}
		p.looping.Store(true)
		loopDone <- s.Run(loopCtx)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	stopLoop()
	if err := <-loopDone; err != nil {
		runErr = errors.Join(runErr, err)
	}
	<-watchDone
	<-notifyDone
	if n != nil {
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := n.Close(delCtx); err != nil {
			log.Error("could not delete the Pub/Sub subscription (it expires after a day unused)", "err", err)
		}
		cancel()
	}

	log.Info("shutting down: flushing pending uploads", "timeout", cfg.ShutdownTimeout)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	left, err := s.Flush(flushCtx)
	switch {
	case err != nil:
		log.Error("flush failed", "err", err)
		runErr = errors.Join(runErr, fmt.Errorf("flush: %w", err))
	case len(left) > 0:
		log.Error("could not flush before the shutdown timeout", "paths", left, "count", len(left))
		runErr = errors.Join(runErr, fmt.Errorf("flush: %d paths not uploaded", len(left)))
	default:
		log.Info("flushed", "duration", time.Since(start).Round(time.Millisecond))
	}
	deadline, _ := flushCtx.Deadline()
	closeHooks(ctx, h, deadline, log)
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, rs := range rtServers {
		_ = rs.Shutdown(shCtx)
	}
	if srv != nil {
		_ = srv.Shutdown(shCtx)
	}
	return runErr
}

// startReadThrough starts the read-through on its loopback address and, with --peers, the peer listener
// on the pod IP (docs/design.md, "Read-through"). Serving errors go to errs.
func startReadThrough(cfg config.Config, env Env, log *slog.Logger, f *filter.Filter, dir *localfs.Dir, s *syncer.Syncer,
	m *metrics.Metrics, errs chan<- error) ([]*http.Server, error) {
	if cfg.ReadThrough == "" {
		return nil, nil
	}
	include, err := filter.New(cfg.ReadThroughIncludes)
	if err != nil {
		return nil, fmt.Errorf("%w: --read-through-include: %w", config.ErrUsage, err)
	}
	rlog := log.With("component", "read-through")
	opt := readthrough.Options{Include: include, Exclude: f, Log: rlog,
		Count:     func(result string) { m.ReadThrough.WithLabelValues(result).Inc() },
		CountPeer: func(result string) { m.PeerRequests.WithLabelValues(result).Inc() }}
	if cfg.Peers != "" {
		_, p, _ := net.SplitHostPort(cfg.PeerListen)
		port, _ := strconv.Atoi(p)
		opt.Peers = &readthrough.Peers{Resolve: readthrough.DNSPeers(cfg.Peers, port, readthrough.OwnIPs),
			Secret: cfg.PeerSecret, Client: &http.Client{}, Log: rlog}
	}
	h := readthrough.New(dir, s, opt)
	listeners := []struct {
		flag, addr string
		handler    http.Handler
	}{{"--read-through", cfg.ReadThrough, h}}
	if cfg.Peers != "" {
		listeners = append(listeners, struct {
			flag, addr string
			handler    http.Handler
		}{"--peer-listen", cfg.PeerListen, h.PeerHandler(cfg.PeerSecret)})
	}
	var servers []*http.Server
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", l.flag, l.addr, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", l.flag, err)
			}
		}()
		rlog.Info("listening", "flag", l.flag, "addr", ln.Addr().String())
	}
	return servers, nil
}

// waitForBucket checks the bucket, retrying with backoff while it cannot be reached (the emulator or the
// network may come up after the sidecar). A bucket that does not exist is a configuration error: no retry.
func waitForBucket(ctx context.Context, store *gcsstore.Store, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		err := store.CheckBucket(ctx)
		if err == nil || errors.Is(err, gcsstore.ErrNotFound) || ctx.Err() != nil {
			return err
		}
		d := backoff.Default.Delay(attempt)
		log.Warn("bucket not reachable yet; retrying", "err", err, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// terminalProgress shows the restore's progress on one line when --once runs in a terminal.
func terminalProgress(cfg config.Config, w io.Writer) func(string) {
	f, ok := w.(*os.File)
	if !cfg.Once || !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(line string) { fmt.Fprintf(w, "\r%s\x1b[K", line) }
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
