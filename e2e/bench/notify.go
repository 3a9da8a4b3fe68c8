package main

// The notify case (issue 12): 2 or 3 live replicas against one fake-gcs-server that publishes its object
// events to the pstest emulator, once with --notifications and once polling (the default
// --poll-interval), sessions interleaved in one run. It measures propagation A -> B of single-file writes,
// the GCS requests each replica makes per change and per idle minute (filesync_gcs_requests_total{op}), the
// listings between reconciles with notifications, and prices both modes per replica-month.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/internal/tools"
)

// The notify case's settings, from the environment only (so main.go keeps just the case's name).
type notifyOptions struct {
	Sizes    []int         // objects in the bucket (BENCH_NOTIFY_SIZES, default 2000)
	Replicas int           // replicas per session, 2 or 3 (BENCH_NOTIFY_REPLICAS)
	Rounds   int           // sessions per mode, alternating (BENCH_NOTIFY_ROUNDS)
	Samples  int           // writes per session (BENCH_NOTIFY_SAMPLES)
	Idle     time.Duration // idle window per session (BENCH_NOTIFY_IDLE)
	Modes    []string      // notifications,polling (BENCH_NOTIFY_MODES)
	FileKiB  int           // size of each write (BENCH_FILE_KIB, shared with the propagation case)
}

func notifyOptionsFromEnv(fileKiB int) (notifyOptions, error) {
	e := harness.NewEnv(nil)
	o := notifyOptions{
		Replicas: e.Int("BENCH_NOTIFY_REPLICAS", 3),
		Rounds:   e.Int("BENCH_NOTIFY_ROUNDS", 2),
		Samples:  e.Int("BENCH_NOTIFY_SAMPLES", 20),
		Idle:     e.Duration("BENCH_NOTIFY_IDLE", 30*time.Second),
		FileKiB:  fileKiB,
	}
	sizes := e.String("BENCH_NOTIFY_SIZES", "2000")
	o.Modes = splitList(e.String("BENCH_NOTIFY_MODES", "notifications,polling"))
	for _, m := range o.Modes {
		if m != "notifications" && m != "polling" {
			return o, fmt.Errorf("BENCH_NOTIFY_MODES: unknown mode %q (known: notifications,polling)", m)
		}
	}
	if err := e.Err(); err != nil {
		return o, err
	}
	for _, s := range splitList(sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, fmt.Errorf("BENCH_NOTIFY_SIZES: %q is not a positive number", s)
		}
		o.Sizes = append(o.Sizes, n)
	}
	if o.Replicas < 2 || o.Replicas > 3 || o.Rounds < 1 || o.Samples < 1 || len(o.Sizes) == 0 || len(o.Modes) == 0 {
		return o, errors.New("BENCH_NOTIFY_REPLICAS must be 2 or 3, BENCH_NOTIFY_ROUNDS and BENCH_NOTIFY_SAMPLES at least 1")
	}
	return o, nil
}

// portPicker hands out the bench's ports (freePort: the -ports range, BENCH_PORTS).
type portPicker struct{}

func (portPicker) get() (int, error) { return freePort() }

const (
	notifyProject = "filesync-bench"
	notifyTopic   = "projects/" + notifyProject + "/topics/objects"
)

// proc is a helper process of the case (the emulator, the event-publishing fake-gcs-server).
type proc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

func startProc(bin string, args, env []string, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited early: %w", p.cmd.Path, p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s within %s", p.cmd.Path, addr, timeout)
		}
	}
}

// notifyEnv is the emulator and the event-publishing fake-gcs-server of one size.
type notifyEnv struct {
	ports    portPicker
	emu      *proc
	emuHost  string
	gcs      *fakeGCS
	preload  string // the -data directory of a large seed
	bucket   string
	size     int
	dataset  *prepared
	commands []string
}

func (n *notifyEnv) stop() {
	if n.gcs != nil {
		n.gcs.stop()
	}
	if n.emu != nil {
		n.emu.stop()
	}
}

// specNotify is the dataset of one size: the 20,000-file layout and size shape (sizes a tenth of the
// 2,000-file library's: the case measures requests and latency, not bytes), with n files.
func specNotify(n int) datasetSpec {
	s := spec20k()
	s.Name = fmt.Sprintf("notify%d", n)
	s.Files = n
	s.Large = max(1, n/170)
	s.TotalBytes = int64(n) * 12 * kb
	s.Seed = uint64(n) + 12
	return s
}

func (b *bench) startNotifyEnv(ctx context.Context, ports portPicker, size int) (*notifyEnv, error) {
	n := &notifyEnv{ports: ports, size: size, bucket: fmt.Sprintf("notify-%d", size)}
	ds, err := b.dataset(specNotify(size))
	if err != nil {
		return nil, err
	}
	n.dataset = ds
	emuBin := filepath.Join(b.bin, "pubsub-emulator")
	if _, err := os.Stat(emuBin); err != nil {
		return nil, fmt.Errorf("bin/pubsub-emulator is missing (make bench builds it from images/pubsub-emulator): %w", err)
	}
	port, err := ports.get()
	if err != nil {
		return nil, err
	}
	n.emuHost = "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-address", n.emuHost, "-topics", notifyTopic}
	if n.emu, err = startProc(emuBin, args, nil, filepath.Join(b.logDir, fmt.Sprintf("notify-%d-pubsub-emulator.log", size))); err != nil {
		return nil, err
	}
	n.commands = append(n.commands, "pubsub-emulator "+strings.Join(args, " "))
	if err := waitTCP(ctx, n.emu, n.emuHost, 30*time.Second); err != nil {
		n.stop()
		return nil, err
	}
	if port, err = ports.get(); err != nil {
		n.stop()
		return nil, err
	}
	opt := gcsOptions{Ready: 60 * time.Second, Env: []string{"PUBSUB_EMULATOR_HOST=" + n.emuHost},
		Args: []string{"-event.pubsub-project-id", notifyProject, "-event.pubsub-topic", "objects",
			"-event.list", "finalize,delete,archive,metadataUpdate"}}
	if size >= bigDataset {
		// The memory backend scans the bucket on every insert (cases.go), so uploading a large seed is
		// quadratic; a -data preload (one directory per bucket, read at start) is not, and it keeps the
		// memory backend's generations, which the filesystem backend lacks.
		n.preload = filepath.Join(b.opt.work, fmt.Sprintf("notify-preload-%d", size))
		if err := linkTree(ds.dir, filepath.Join(n.preload, n.bucket, prefix), ds.files); err != nil {
			n.stop()
			return nil, err
		}
		opt.Data = n.preload
	}
	g, err := tools.StartFakeGCS(ctx, filepath.Join(b.bin, "fake-gcs-server"),
		filepath.Join(b.logDir, fmt.Sprintf("notify-%d-fake-gcs-server.log", size)), port, opt)
	if err != nil {
		n.stop()
		return nil, err
	}
	n.gcs = &fakeGCS{g}
	n.commands = append(n.commands, "PUBSUB_EMULATOR_HOST="+n.emuHost+" "+g.CommandLine())
	start := time.Now()
	if n.preload == "" {
		if err := n.gcs.CreateBucket(ctx, n.bucket); err != nil {
			n.stop()
			return nil, err
		}
		if err := n.gcs.seed(ctx, n.bucket, prefix, ds.dir, ds.files); err != nil {
			n.stop()
			return nil, err
		}
	}
	objs, err := n.gcs.list(ctx, n.bucket, prefix)
	if err == nil {
		err = verifyObjects(objs, prefix, ds.files)
	}
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("seeding %s: %w", n.bucket, err)
	}
	b.log.Info("notify: bucket seeded", "bucket", n.bucket, "objects", len(objs), "took", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// linkTree hard-links the dataset's files from src into dst (same layout), for a -data preload.
func linkTree(src, dst string, files []file) error {
	for _, f := range files {
		to := filepath.Join(dst, filepath.FromSlash(f.Rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fmt.Errorf("preparing the preload: %w", err)
		}
		if err := os.Link(filepath.Join(src, filepath.FromSlash(f.Rel)), to); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("preparing the preload: %w", err)
		}
	}
	return nil
}

// counters are the values of the metrics the case reads from one replica.
type counters map[string]float64

// gcsOps are the values of filesync_gcs_requests_total's op label (gcsstore.Op*).
var gcsOps = []string{"list", "get", "read", "insert", "delete"}

func readCounters(r *replica) (counters, error) {
	m, err := r.metrics()
	if err != nil {
		return nil, err
	}
	c := counters{}
	for _, op := range gcsOps {
		c[op] = m.SumWhere("filesync_gcs_requests_total", "op", op)
	}
	for _, k := range []string{"filesync_notify_events_received_total", "filesync_notify_reconcile_listings_total",
		"filesync_notify_subscribed", "filesync_notify_subscription_recreations_total"} {
		c[k] = m.Sum(k)
	}
	return c, nil
}

func (c counters) minus(d counters) counters {
	out := counters{}
	for k, v := range c {
		out[k] = v - d[k]
	}
	return out
}

// notifySession is one start of the replicas in one mode.
type notifySession struct {
	Size      int
	Mode      string // "notifications" or "polling"
	Round     int
	Commands  []string
	Ready     []time.Duration
	IdleWin   time.Duration
	IdleCPU   []float64 // % of one core per replica
	IdleGCS   float64   // % of one core, fake-gcs-server
	Idle      []counters
	WriteWin  time.Duration
	Writes    int
	Write     []counters // per replica, over the writes (until every replica had every file)
	SinceUp   []counters // per replica, from 5 s after ready to the end: the listings between reconciles
	Total     []time.Duration
	Uploaded  []time.Duration
	LoadStart string
	LoadEnd   string
}

type notifyResult struct {
	Opt      notifyOptions
	Sessions []*notifySession
	Commands map[int][]string
}

func (b *bench) notify(ctx context.Context) error {
	o, err := notifyOptionsFromEnv(b.opt.fileSizeKiB)
	if err != nil {
		return err
	}
	ports := portPicker{}
	res := &notifyResult{Opt: o, Commands: map[int][]string{}}
	defer func() { b.writeNotify(res) }()
	for _, size := range o.Sizes {
		env, err := b.startNotifyEnv(ctx, ports, size)
		if err != nil {
			return err
		}
		res.Commands[size] = env.commands
		for round := range o.Rounds {
			modes := slices.Clone(o.Modes)
			if round%2 == 1 {
				slices.Reverse(modes)
			}
			for _, mode := range modes {
				s, err := b.notifySession(ctx, env, ports, o, mode, round)
				if s != nil {
					res.Sessions = append(res.Sessions, s)
				}
				if err != nil {
					env.stop()
					return fmt.Errorf("%d objects, %s, round %d: %w", size, mode, round+1, err)
				}
			}
		}
		env.stop()
	}
	return nil
}

func (b *bench) notifySession(ctx context.Context, env *notifyEnv, ports portPicker, o notifyOptions, mode string, round int) (*notifySession, error) {
	s := &notifySession{Size: env.size, Mode: mode, Round: round + 1, LoadStart: loadAvg()}
	remote := "gs://" + env.bucket + "/" + prefix
	var reps []*replica
	var rels []string
	defer func() {
		for _, r := range reps {
			r.stop()
		}
		// The next session starts from the same objects: the writes of this one are deleted (after the
		// replicas are gone, so none of them sees the deletes).
		for _, rel := range rels {
			if err := env.gcs.Delete(context.WithoutCancel(ctx), env.bucket, prefix+"/"+rel); err != nil && !harness.IsNotFound(err) {
				b.log.Warn("notify: deleting a write", "object", rel, "err", err)
			}
		}
	}()
	names := []string{"a", "b", "c"}[:o.Replicas]
	for _, name := range names {
		tag := fmt.Sprintf("notify-%d-%s-%d-%s", env.size, mode, round+1, name)
		var extra, penv []string
		if mode == "notifications" {
			extra = []string{"--notifications", notifyTopic}
			penv = []string{"PUBSUB_EMULATOR_HOST=" + env.emuHost}
		}
		r, err := startReplica(tag, filepath.Join(b.opt.work, tag), remote, env.gcs.host(),
			filepath.Join(b.logDir, tag+".log"), penv, extra...)
		if err != nil {
			return s, err
		}
		reps = append(reps, r)
		s.Commands = append(s.Commands, strings.Join(penv, " ")+" "+commandLine(r.cmd))
	}
	for _, r := range reps {
		took, err := r.waitReady(ctx, 15*time.Minute)
		if err != nil {
			return s, err
		}
		s.Ready = append(s.Ready, took)
	}
	for _, r := range reps {
		if err := verifyDir(r.dir, env.dataset.files); err != nil {
			return s, fmt.Errorf("replica %s after its restore: %w", r.name, err)
		}
		if mode == "notifications" {
			c, err := readCounters(r)
			if err != nil {
				return s, err
			}
			if c["filesync_notify_subscribed"] != 1 {
				return s, fmt.Errorf("replica %s is ready but not subscribed", r.name)
			}
		}
	}
	b.log.Info("notify: replicas ready", "objects", env.size, "mode", mode, "round", round+1, "after", s.Ready)
	time.Sleep(5 * time.Second) // the restore's own file events, the first polls

	snap := func() ([]counters, error) {
		var out []counters
		for _, r := range reps {
			c, err := readCounters(r)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}
	up, err := snap()
	if err != nil {
		return s, err
	}
	pids := []int{}
	for _, r := range reps {
		pids = append(pids, r.pid())
	}
	idleStart := time.Now()
	pcts, err := cpuOver(ctx, o.Idle, append(pids, env.gcs.pid())...)
	if err != nil {
		return s, err
	}
	s.IdleWin = time.Since(idleStart)
	s.IdleCPU, s.IdleGCS = pcts[:len(reps)], pcts[len(reps)]
	afterIdle, err := snap()
	if err != nil {
		return s, err
	}
	for i := range reps {
		s.Idle = append(s.Idle, afterIdle[i].minus(up[i]))
	}

	dir := path.Dir(env.dataset.files[0].Rel)
	rnd := rand.New(rand.NewPCG(uint64(env.size), uint64(round*2+len(mode))))
	data := make([]byte, o.FileKiB*kb)
	writeStart := time.Now()
	for i := range o.Samples {
		jitter(ctx, rnd, time.Second)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		rel := fmt.Sprintf("%s/notify-%s-%d-%03d.jpg", dir, mode, round+1, i)
		rels = append(rels, rel)
		p, err := propagate(ctx, env.gcs, env.bucket, prefix, reps[0], reps[1], b.opt.work, rel, data)
		if err != nil {
			return s, err
		}
		s.Total = append(s.Total, p.Total)
		s.Uploaded = append(s.Uploaded, p.Uploaded)
		fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Notify/mode=%s/files=%d/replicas=%d", mode, env.size, len(reps)), p.Total,
			metric{p.Uploaded.Seconds(), "upload-sec/op"}))
	}
	// Every replica has every file before the counters are read, so each change is counted whole.
	for _, r := range reps[2:] {
		for _, rel := range rels {
			if err := waitFile(ctx, filepath.Join(r.dir, filepath.FromSlash(rel)), int64(len(data)), 30*time.Second); err != nil {
				return s, fmt.Errorf("replica %s: %w", r.name, err)
			}
		}
	}
	time.Sleep(2 * time.Second) // the settle of the last downloads, the acks
	s.WriteWin, s.Writes = time.Since(writeStart), len(rels)
	end, err := snap()
	if err != nil {
		return s, err
	}
	for i := range reps {
		s.Write = append(s.Write, end[i].minus(afterIdle[i]))
		s.SinceUp = append(s.SinceUp, end[i].minus(up[i]))
	}
	s.LoadEnd = loadAvg()
	b.log.Info("notify: session done", "objects", env.size, "mode", mode, "round", round+1,
		"p50", percentile(s.Total, 50).Round(time.Millisecond), "p99", percentile(s.Total, 99).Round(time.Millisecond))
	return s, nil
}

func waitFile(ctx context.Context, p string, size int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if fi, err := os.Stat(p); err == nil && fi.Size() == size {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not complete within %s", p, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (b *bench) writeNotify(res *notifyResult) {
	if len(res.Sessions) == 0 {
		return
	}
	raw, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(b.opt.out, "notify.json"), raw, 0o644)
	}
	if err != nil {
		b.log.Warn("notify: writing notify.json", "err", err)
	}
	md := renderNotify(res, defaultPrices(), defaultUsage())
	fmt.Println(md)
	if err := os.WriteFile(filepath.Join(b.opt.out, "notify.md"), []byte(md), 0o644); err != nil {
		b.log.Warn("notify: writing notify.md", "err", err)
	}
}

// prices are the public list prices the cost table uses (as of 2026).
type prices struct {
	ClassA     float64 // $ per 1,000 Class A operations (objects.list, objects.insert)
	ClassB     float64 // $ per 1,000 Class B operations (objects.get, media downloads)
	PubSubTiB  float64 // $ per TiB of messages delivered
	MinMessage float64 // bytes billed at least per message
}

func defaultPrices() prices {
	return prices{ClassA: 0.005, ClassB: 0.0004, PubSubTiB: 40, MinMessage: 1000}
}

// usage are the assumptions of the cost table.
type usage struct {
	ChangesPerDay float64       // file changes (new, overwritten or deleted objects) per day
	PageTime      time.Duration // one listing page of 1,000 objects against real GCS
	MessageBytes  float64       // a notification's size (billed at least MinMessage)
	Reconcile     time.Duration // --reconcile-interval
	Sizes         []int
}

func defaultUsage() usage {
	return usage{ChangesPerDay: 1000, PageTime: 200 * time.Millisecond, MessageBytes: 1000,
		Reconcile: 10 * time.Minute, Sizes: []int{2000, 20000, 100000, 500000}}
}

const month = 30 * 24 * time.Hour

// modeStats sums a mode's sessions of one size.
type modeStats struct {
	sessions        int
	total, uploaded []time.Duration
	idleMin         float64     // minutes of idle, summed over the replicas
	idle            counters    // idle requests summed over replicas and sessions
	writes          float64     // changes summed over the sessions
	write           []counters  // per replica index, summed over sessions
	writeMin        []float64   // minutes of the writes, per replica index
	sinceUpList     float64     // listings from 5 s after ready to the end, all replicas
	notifyRecv      float64     // notifications received, all replicas, over the writes
	idleCPU         [][]float64 // per replica index
	idleGCS         []float64
	loads           []string
	reconciles      float64
}

func modeStatsOf(res *notifyResult, size int, mode string) *modeStats {
	m := &modeStats{idle: counters{}}
	for _, s := range res.Sessions {
		if s.Size != size || s.Mode != mode || len(s.Write) == 0 {
			continue
		}
		m.sessions++
		m.total = append(m.total, s.Total...)
		m.uploaded = append(m.uploaded, s.Uploaded...)
		m.writes += float64(s.Writes)
		m.idleGCS = append(m.idleGCS, s.IdleGCS)
		m.loads = append(m.loads, s.LoadStart+" → "+s.LoadEnd)
		for i := range s.Write {
			if len(m.write) <= i {
				m.write = append(m.write, counters{})
				m.writeMin = append(m.writeMin, 0)
				m.idleCPU = append(m.idleCPU, nil)
			}
			m.idleMin += s.IdleWin.Minutes()
			for k, v := range s.Idle[i] {
				m.idle[k] += v
			}
			for k, v := range s.Write[i] {
				m.write[i][k] += v
			}
			m.writeMin[i] += s.WriteWin.Minutes()
			m.idleCPU[i] = append(m.idleCPU[i], s.IdleCPU[i])
			m.sinceUpList += s.SinceUp[i]["list"]
			m.notifyRecv += s.Write[i]["filesync_notify_events_received_total"]
			m.reconciles += s.SinceUp[i]["filesync_notify_reconcile_listings_total"]
		}
	}
	return m
}

// idlePerMin is one replica's idle requests of op per minute.
func (m *modeStats) idlePerMin(op string) float64 {
	if m.idleMin == 0 {
		return 0
	}
	return m.idle[op] / m.idleMin
}

// perChange is replica i's requests of op per change over the writes, and the same net of its idle rate.
func (m *modeStats) perChange(i int, op string) (raw, net float64) {
	raw = m.write[i][op] / m.writes
	net = (m.write[i][op] - m.idlePerMin(op)*m.writeMin[i]) / m.writes
	return raw, max(net, 0)
}

func fmtCount(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func meanF(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	var s float64
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

func renderNotify(res *notifyResult, p prices, u usage) string {
	var w strings.Builder
	o := res.Opt
	fmt.Fprintf(&w, "## Notifications vs polling (notify case)\n\n")
	fmt.Fprintf(&w, "%d replicas per session, %d sessions per mode and size, alternating (notifications first in odd rounds, polling first in even ones); "+
		"%d writes of a new %d KiB file into replica A's directory per session (renamed in, after a random 0–1 s pause); "+
		"A → B timed; idle window %s per session. Polling: default `--poll-interval 2s`; notifications: `--notifications %s` "+
		"(default `--reconcile-interval 10m`). Default `--settle` in both.\n\n",
		o.Replicas, o.Rounds, o.Samples, o.FileKiB, o.Idle, notifyTopic)
	sizes := slices.Sorted(func(yield func(int) bool) {
		for k := range res.Commands {
			if !yield(k) {
				return
			}
		}
	})
	for _, size := range sizes {
		fmt.Fprintf(&w, "### %d objects\n\n", size)
		fmt.Fprintf(&w, "| mode | writes | p50 | p90 | p99 | max | upload p50 | bucket → B p50 | target |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, mode := range []string{"notifications", "polling"} {
			m := modeStatsOf(res, size, mode)
			if m.sessions == 0 {
				continue
			}
			var rest []time.Duration
			for i := range m.total {
				rest = append(rest, m.total[i]-m.uploaded[i])
			}
			target := "—"
			if mode == "notifications" {
				p50, p99 := percentile(m.total, 50), percentile(m.total, 99)
				target = fmt.Sprintf("p50 ≤ 0.7 s: %s; p99 ≤ 1.0 s: %s", missBy(p50, 700*time.Millisecond), missBy(p99, time.Second))
			}
			fmt.Fprintf(&w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", mode, len(m.total),
				secs(percentile(m.total, 50)), secs(percentile(m.total, 90)), secs(percentile(m.total, 99)),
				secs(slices.Max(m.total)), secs(percentile(m.uploaded, 50)), secs(percentile(rest, 50)), target)
		}
		fmt.Fprintf(&w, "\nGCS requests per change per replica over the writes (`filesync_gcs_requests_total{op}` deltas ÷ writes; "+
			"in brackets net of the replica's idle rate over the same minutes; A writes, the others receive):\n\n")
		fmt.Fprintf(&w, "| mode | replica | list | get | read | insert | delete | total | net total | target ≤ 3 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, mode := range []string{"notifications", "polling"} {
			m := modeStatsOf(res, size, mode)
			for i := range m.write {
				var tot, totNet float64
				cells := []string{}
				for _, op := range gcsOps {
					raw, net := m.perChange(i, op)
					tot, totNet = tot+raw, totNet+net
					cells = append(cells, fmt.Sprintf("%s (%s)", fmtCount(raw), fmtCount(net)))
				}
				fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s |\n", mode, string(rune('A'+i)), strings.Join(cells, " | "),
					fmtCount(tot), fmtCount(totNet), verdict(totNet <= 3))
			}
		}
		fmt.Fprintf(&w, "\nIdle, per replica (mean over replicas and sessions):\n\n")
		fmt.Fprintf(&w, "| mode | list/min | get/min | read/min | all requests/min | CPU per replica (%% of a core) | fake-gcs-server CPU | listings after ready, all replicas (target 0 with notifications) | load average (session start → end) |\n|---|---:|---:|---:|---:|---|---|---:|---|\n")
		for _, mode := range []string{"notifications", "polling"} {
			m := modeStatsOf(res, size, mode)
			if m.sessions == 0 {
				continue
			}
			var all float64
			for _, op := range gcsOps {
				all += m.idlePerMin(op)
			}
			var cpu []string
			for i := range m.idleCPU {
				cpu = append(cpu, fmt.Sprintf("%s %.2f", string(rune('A'+i)), meanF(m.idleCPU[i])))
			}
			fmt.Fprintf(&w, "| %s | %.1f | %.1f | %.1f | %.1f | %s | %.2f | %s | %s |\n", mode, m.idlePerMin("list"),
				m.idlePerMin("get"), m.idlePerMin("read"), all, strings.Join(cpu, ", "), meanF(m.idleGCS),
				fmtCount(m.sinceUpList), strings.Join(m.loads, "; "))
		}
		if m := modeStatsOf(res, size, "notifications"); m.sessions > 0 {
			fmt.Fprintf(&w, "\nWith notifications: %s notifications received per change per replica; %s reconcile listings asked for "+
				"(stream failures or recreated subscriptions).\n", fmtCount(m.notifyRecv/m.writes/float64(len(m.write))), fmtCount(m.reconciles))
		}
		fmt.Fprintf(&w, "\nCommands:\n\n```\n%s\n", strings.Join(res.Commands[size], "\n"))
		for _, s := range res.Sessions {
			if s.Size == size && s.Round == 1 {
				fmt.Fprintf(&w, "%s\n", strings.Join(s.Commands, "\n"))
			}
		}
		fmt.Fprintf(&w, "```\n\n")
		w.WriteString(renderCost(res, size, p, u))
	}
	return w.String()
}

func missBy(got, want time.Duration) string {
	if got <= want {
		return "met"
	}
	return fmt.Sprintf("**missed by %s (%.0f %%)**", secs(got-want), 100*float64(got-want)/float64(want))
}

// renderCost prices a replica-month of each mode at u.Sizes objects from the requests counted at size.
func renderCost(res *notifyResult, size int, p prices, u usage) string {
	mn, mp := modeStatsOf(res, size, "notifications"), modeStatsOf(res, size, "polling")
	if mn.sessions == 0 || mp.sessions == 0 {
		return ""
	}
	pages := func(n int) float64 { return math.Ceil(float64(n) / 1000) }
	// Polls per minute measured while idle at this size; against GCS a poll of n objects takes
	// pages×PageTime, and the ticker drops the ticks that fall inside a poll.
	pollsPerMin := mp.idlePerMin("list") / pages(size)
	changes := u.ChangesPerDay * month.Hours() / 24
	// Requests per change by class, mean over the replicas, net of idle.
	perChange := func(m *modeStats) (a, bb float64) {
		for i := range m.write {
			for _, op := range []string{"list", "insert"} {
				_, net := m.perChange(i, op)
				a += net
			}
			for _, op := range []string{"get", "read"} {
				_, net := m.perChange(i, op)
				bb += net
			}
		}
		return a / float64(len(m.write)), bb / float64(len(m.write))
	}
	na, nb := perChange(mn)
	pa, pb := perChange(mp)
	msgs := mn.notifyRecv / mn.writes / float64(len(mn.write))
	var w strings.Builder
	fmt.Fprintf(&w, "Cost per replica-month (30 days), from the requests counted above at %d objects. Prices (list prices as of 2026): "+
		"GCS Class A $%.3f per 1,000 operations (objects.list, objects.insert), Class B $%.4f per 1,000 (objects.get, downloads), "+
		"deletes free; Pub/Sub $%.0f per TiB delivered, at least %.0f bytes per message; no free tiers, no storage or egress. "+
		"Assumptions: %.0f file changes per day; polling: %.1f polls per minute (measured idle at %d objects), at most one poll per "+
		"listing time, a page of 1,000 objects taking %s against GCS; notifications: one listing per --reconcile-interval %s, "+
		"%s notifications per change per replica (measured), %.0f bytes each; per change (mean over replicas, net of idle): "+
		"notifications %.2f Class A + %.2f Class B, polling %.2f + %.2f.\n\n",
		size, p.ClassA, p.ClassB, p.PubSubTiB, p.MinMessage, u.ChangesPerDay, pollsPerMin, size, u.PageTime, u.Reconcile,
		fmtCount(msgs), u.MessageBytes, na, nb, pa, pb)
	fmt.Fprintf(&w, "| objects | polling: lists/month | polling $/month | notifications: lists/month | Pub/Sub $/month | notifications $/month | polling ÷ notifications |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range u.Sizes {
		pollTime := pages(n) * u.PageTime.Minutes()
		ppm := pollsPerMin
		if pollTime > 0 && 1/pollTime < ppm {
			ppm = 1 / pollTime
		}
		pollLists := pages(n) * ppm * month.Minutes()
		poll := (pollLists+changes*pa)*p.ClassA/1000 + changes*pb*p.ClassB/1000
		recLists := pages(n) * month.Minutes() / u.Reconcile.Minutes()
		psub := changes * msgs * math.Max(u.MessageBytes, p.MinMessage) / (1 << 40) * p.PubSubTiB
		notif := (recLists+changes*na)*p.ClassA/1000 + changes*nb*p.ClassB/1000 + psub
		fmt.Fprintf(&w, "| %d | %.0f | $%.2f | %.0f | $%.4f | $%.2f | %.0f× |\n", n, pollLists, poll, recLists, psub, notif, poll/notif)
	}
	w.WriteString("\n")
	return w.String()
}
