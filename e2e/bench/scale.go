package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The scale case (issue 10): two live replicas over N files that are in sync on both sides; single-file
// changes on replica A and in the bucket, each measured from outside per replica.

// scaleOps are the kinds of filesync_gcs_requests_total, in the order the tables print them.
var scaleOps = []string{"list", "get", "read", "insert", "delete"}

const (
	scaleChangeSize = 4096            // bytes of every change: one page of write_bytes when a replica writes it
	scaleTail       = 2 * time.Second // after a change has arrived, how long the window stays open (a settle and an echo pass)
	scalePoll       = 2 * time.Second // the sidecar's default --poll-interval, which the replicas run with
)

// scaleSpec is N small files (512 B - 8 KiB) in the WordPress layout: the case measures per-file and
// per-listing costs, not bytes.
func scaleSpec(n int) datasetSpec {
	return datasetSpec{Name: "scale" + strconv.Itoa(n), Files: n, MinImage: 512, MaxImage: 8 * kb, Seed: uint64(n)}
}

// sample is what a replica has used so far, read from outside.
type sample struct {
	CPU      time.Duration      // utime+stime, /proc/PID/stat
	Written  int64              // write_bytes, /proc/PID/io (its log goes through a pipe, so it is not counted)
	Requests map[string]float64 // filesync_gcs_requests_total by op
	Passes   float64            // filesync_pass_duration_seconds_count
}

// cost is the difference of two samples.
type cost struct {
	CPU      time.Duration
	Written  int64
	Requests map[string]float64
	Passes   float64
}

func (s sample) since(before sample) cost {
	c := cost{CPU: s.CPU - before.CPU, Written: s.Written - before.Written, Passes: s.Passes - before.Passes,
		Requests: map[string]float64{}}
	for _, op := range scaleOps {
		c.Requests[op] = s.Requests[op] - before.Requests[op]
	}
	return c
}

// procWriteBytes returns write_bytes of /proc/PID/io: bytes the process caused to be written to storage
// (counted per page dirtied).
func procWriteBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, fmt.Errorf("reading the I/O counters of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no write_bytes in /proc/%d/io", pid)
}

// sample reads the replica's CPU, write_bytes and metrics.
func (r *replica) sample() (sample, error) {
	var s sample
	var err error
	if s.CPU, err = procCPU(r.pid()); err != nil {
		return s, err
	}
	if s.Written, err = procWriteBytes(r.pid()); err != nil {
		return s, err
	}
	m, err := r.metrics()
	if err != nil {
		return s, err
	}
	if !m.Has("filesync_gcs_requests_total") {
		return s, fmt.Errorf("%s has no filesync_gcs_requests_total", r.name)
	}
	s.Requests = m.ByLabel("filesync_gcs_requests_total", "op")
	s.Passes = m.Sum("filesync_pass_duration_seconds")
	return s, nil
}

// scaleChange is one change and what each replica spent on it, over its window.
type scaleChange struct {
	Propagation time.Duration // the change -> complete on the other replica (both replicas for a bucket change)
	Uploaded    time.Duration // a local write -> the object is in the bucket
	Window      time.Duration // the change -> the second sample
	Cost        [2]cost       // replica A, B
}

// scaleSize is one size's measurements.
type scaleSize struct {
	Files      int
	Bytes      int64
	Backend    string
	Seed       time.Duration    // bucket seeded (memory backend: the server's -data preload) and listed once
	Ready      [2]time.Duration // each replica's first pass over the files already in sync, until /readyz
	Known      [2]int64         // filesync_known_files after it
	IdleWindow time.Duration
	Idle       [2]cost // before the changes
	// After the changes: the polls in a change's window are taken out at the lower of the two idle costs
	// per listed page.
	IdleAfterWindow time.Duration
	IdleAfter       [2]cost
	IdleServer      float64 // fake-gcs-server's CPU, % of one core, while idle
	Local           []scaleChange
	Remote          []scaleChange
	HWM             [2]int64 // VmHWM at the end, KiB
	ListOnePage     time.Duration
}

type scaleResult struct {
	Backend  string
	Changes  int
	Sizes    []*scaleSize
	Commands []string
}

// scale runs the scale case at every size of -scale-sizes.
func (b *bench) scale(ctx context.Context) error {
	res := &scaleResult{Backend: b.opt.scaleBackend, Changes: b.opt.scaleChanges}
	b.rep.Scale = res
	// Every change's raw samples, for a re-analysis without a re-run.
	defer func() {
		if data, err := json.MarshalIndent(res, "", " "); err == nil {
			_ = os.WriteFile(filepath.Join(b.opt.out, "scale.json"), data, 0o644)
		}
	}()
	for _, n := range b.opt.scaleSizes {
		sz, cmds, err := b.scaleOne(ctx, n)
		if sz != nil {
			res.Sizes = append(res.Sizes, sz)
		}
		if len(res.Commands) == 0 {
			res.Commands = cmds
		}
		if err != nil {
			return fmt.Errorf("%d files: %w", n, err)
		}
	}
	return nil
}

func (b *bench) scaleOne(ctx context.Context, n int) (*scaleSize, []string, error) {
	spec := scaleSpec(n)
	files, err := spec.generate()
	if err != nil {
		return nil, nil, err
	}
	work := filepath.Join(b.opt.work, spec.Name)
	defer os.RemoveAll(work)
	const bucket = "scale"
	sz := &scaleSize{Files: n, Bytes: totalBytes(files), Backend: b.opt.scaleBackend}
	dirs := [2]string{filepath.Join(work, "a"), filepath.Join(work, "b")}
	start := time.Now()
	for _, d := range dirs {
		if err := writeFiles(d, files, spec.Seed); err != nil {
			return nil, nil, err
		}
	}
	b.log.Info("scale: replica directories written", "files", n, "took", time.Since(start).Round(time.Millisecond))

	var opt gcsOptions
	if b.opt.scaleBackend == "memory" {
		// -data DIR loads DIR/BUCKET/NAME at start, without the HTTP round trips and JSON of an upload;
		// the memory backend is still quadratic in objects (each insert scans the bucket).
		opt.Data = filepath.Join(work, "seed")
		if err := writeFiles(filepath.Join(opt.Data, bucket, prefix), files, spec.Seed); err != nil {
			return nil, nil, err
		}
		opt.Ready = 4 * time.Hour
	} else {
		opt.FSRoot = filepath.Join(work, "gcs-fs")
	}
	start = time.Now()
	gcs, err := startFakeGCS(ctx, filepath.Join(b.bin, "fake-gcs-server"),
		filepath.Join(b.logDir, "fake-gcs-server-"+spec.Name+".log"), opt)
	if err != nil {
		return nil, nil, err
	}
	defer gcs.stop()
	if opt.FSRoot != "" {
		if err := gcs.CreateBucket(ctx, bucket); err != nil {
			return nil, nil, err
		}
		content := func(i int) []byte {
			data, err := os.ReadFile(filepath.Join(dirs[0], filepath.FromSlash(files[i].Rel)))
			if err != nil {
				return nil // verifyObjects below names the object
			}
			return data
		}
		if err := writeFSBackendObjects(opt.FSRoot, bucket, prefix, files, content); err != nil {
			return nil, nil, err
		}
	}
	objs, err := gcs.list(ctx, bucket, prefix)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyObjects(objs, prefix, files); err != nil {
		return nil, nil, err
	}
	sz.Seed = time.Since(start)
	t0 := time.Now()
	if err := listFirstPage(ctx, gcs, bucket); err != nil {
		return nil, nil, err
	}
	sz.ListOnePage = time.Since(t0)
	b.log.Info("scale: bucket seeded", "files", n, "backend", b.opt.scaleBackend, "took", sz.Seed.Round(time.Millisecond),
		"one_page", sz.ListOnePage.Round(time.Millisecond))

	var reps [2]*replica
	var cmds []string
	defer func() {
		for _, r := range reps {
			if r != nil {
				r.stop()
			}
		}
	}()
	for i, name := range []string{"a", "b"} {
		state := filepath.Join(work, "state-"+name)
		if err := os.MkdirAll(state, 0o755); err != nil {
			return sz, cmds, fmt.Errorf("creating %s: %w", state, err)
		}
		r, err := startReplica("scale-"+name, dirs[i], "gs://"+bucket+"/"+prefix, gcs.host(),
			filepath.Join(b.logDir, spec.Name+"-replica-"+name+".log"), nil, "--state-dir", state)
		if err != nil {
			return sz, cmds, err
		}
		reps[i] = r
		cmds = append(cmds, commandLine(r.cmd))
	}
	// Both first passes run at once, as in a rollout; each replica's time is from its start to its /readyz.
	readyErr := make(chan error, len(reps))
	for i, r := range reps {
		go func() {
			_, err := r.waitReady(ctx, 4*time.Hour)
			sz.Ready[i] = time.Since(r.started)
			readyErr <- err
		}()
	}
	for range reps {
		if err := <-readyErr; err != nil {
			return sz, cmds, err
		}
	}
	for i, r := range reps {
		known, err := r.metric("filesync_known_files")
		if err != nil {
			return sz, cmds, err
		}
		sz.Known[i] = int64(known)
		if sz.Known[i] != int64(n) {
			return sz, cmds, fmt.Errorf("replica %s knows %d files after its first pass, want %d", r.name, sz.Known[i], n)
		}
		if err := verifyDir(r.dir, files); err != nil {
			return sz, cmds, fmt.Errorf("replica %s after its first pass: %w", r.name, err)
		}
	}
	b.log.Info("scale: replicas ready", "files", n, "a", sz.Ready[0].Round(time.Millisecond), "b", sz.Ready[1].Round(time.Millisecond))
	if !sleepCtx(ctx, 5*time.Second) {
		return sz, cmds, ctx.Err()
	}

	// Idle: nothing changes.
	if sz.IdleWindow, sz.Idle, sz.IdleServer, err = measureIdle(ctx, reps, gcs, b.opt.idle); err != nil {
		return sz, cmds, err
	}
	b.log.Info("scale: idle", "files", n, "cpu_a", sz.Idle[0].CPU, "cpu_b", sz.Idle[1].CPU,
		"list_a", sz.Idle[0].Requests["list"], "list_b", sz.Idle[1].Requests["list"])

	rnd := rand.New(rand.NewPCG(uint64(n), 10))
	content := func() []byte {
		data := make([]byte, scaleChangeSize)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		return data
	}
	a, rb := reps[0], reps[1]
	dir := path.Dir(files[0].Rel) // an existing folder: a new one is another code path (a rescan hint)
	for i := range b.opt.scaleChanges {
		jitter(ctx, rnd, scalePoll)
		data := content()
		rel := fmt.Sprintf("%s/scale-local-%03d.jpg", dir, i)
		ch, err := measureChange(ctx, reps, func() error {
			tmp := filepath.Join(work, "incoming")
			if err := os.WriteFile(tmp, data, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, filepath.Join(a.dir, filepath.FromSlash(rel)))
		}, func(ctx context.Context, start time.Time, ch *scaleChange) error {
			uploaded := make(chan time.Duration, 1)
			go func() { uploaded <- waitObject(ctx, gcs, bucket, prefix+"/"+rel, start) }()
			d, err := waitContent(ctx, filepath.Join(rb.dir, filepath.FromSlash(rel)), data, start)
			ch.Propagation, ch.Uploaded = d, <-uploaded
			return err
		})
		if err != nil {
			return sz, cmds, fmt.Errorf("local write %d: %w", i+1, err)
		}
		sz.Local = append(sz.Local, ch)
		b.logChange("local", n, i, ch)
	}
	for i := range b.opt.scaleChanges {
		jitter(ctx, rnd, scalePoll)
		data := content()
		// Spread over the bucket: an object of the dataset, overwritten by another client.
		rel := files[(i*n/b.opt.scaleChanges+n/(2*b.opt.scaleChanges))%n].Rel
		ch, err := measureChange(ctx, reps, func() error {
			return gcs.Upload(ctx, bucket, prefix+"/"+rel, data)
		}, func(ctx context.Context, start time.Time, ch *scaleChange) error {
			for _, r := range reps {
				d, err := waitContent(ctx, filepath.Join(r.dir, filepath.FromSlash(rel)), data, start)
				if err != nil {
					return err
				}
				ch.Propagation = max(ch.Propagation, d)
			}
			return nil
		})
		if err != nil {
			return sz, cmds, fmt.Errorf("bucket change %d: %w", i+1, err)
		}
		sz.Remote = append(sz.Remote, ch)
		b.logChange("remote", n, i, ch)
	}
	// Idle again, after the changes: the first minute after a restore may still carry its aftermath.
	if !sleepCtx(ctx, scaleTail) {
		return sz, cmds, ctx.Err()
	}
	if sz.IdleAfterWindow, sz.IdleAfter, _, err = measureIdle(ctx, reps, gcs, b.opt.idle); err != nil {
		return sz, cmds, err
	}
	for i, r := range reps {
		sz.HWM[i], _ = procStatus(r.pid(), "VmHWM")
	}
	b.writeScaleLines(sz)
	return sz, cmds, nil
}

// measureIdle samples both replicas and the server, waits d with nothing changing, and samples again.
func measureIdle(ctx context.Context, reps [2]*replica, gcs *fakeGCS, d time.Duration) (time.Duration, [2]cost, float64, error) {
	var costs [2]cost
	before, err := sampleBoth(reps)
	if err != nil {
		return 0, costs, 0, err
	}
	srvBefore, err := procCPU(gcs.pid())
	if err != nil {
		return 0, costs, 0, err
	}
	t0 := time.Now()
	if !sleepCtx(ctx, d) {
		return 0, costs, 0, ctx.Err()
	}
	after, err := sampleBoth(reps)
	if err != nil {
		return 0, costs, 0, err
	}
	srvAfter, err := procCPU(gcs.pid())
	if err != nil {
		return 0, costs, 0, err
	}
	window := time.Since(t0)
	for i := range reps {
		costs[i] = after[i].since(before[i])
	}
	return window, costs, 100 * float64(srvAfter-srvBefore) / float64(window), nil
}

func (b *bench) logChange(kind string, n, i int, ch scaleChange) {
	b.log.Info("scale: change", "kind", kind, "files", n, "n", i+1, "propagation", ch.Propagation.Round(time.Millisecond),
		"window", ch.Window.Round(time.Millisecond), "cpu_a", ch.Cost[0].CPU, "cpu_b", ch.Cost[1].CPU,
		"req_a", ch.Cost[0].Requests, "req_b", ch.Cost[1].Requests, "written_a", ch.Cost[0].Written, "written_b", ch.Cost[1].Written)
}

// measureChange samples both replicas, makes the change, waits for it to arrive (wait fills in the
// times), keeps the window open scaleTail longer, and samples again.
func measureChange(ctx context.Context, reps [2]*replica, change func() error,
	wait func(ctx context.Context, start time.Time, ch *scaleChange) error) (scaleChange, error) {
	var ch scaleChange
	before, err := sampleBoth(reps)
	if err != nil {
		return ch, err
	}
	start := time.Now()
	if err := change(); err != nil {
		return ch, fmt.Errorf("making the change: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	err = wait(wctx, start, &ch)
	cancel()
	if err != nil {
		return ch, err
	}
	if !sleepCtx(ctx, scaleTail) {
		return ch, ctx.Err()
	}
	after, err := sampleBoth(reps)
	if err != nil {
		return ch, err
	}
	ch.Window = time.Since(start)
	for i := range reps {
		ch.Cost[i] = after[i].since(before[i])
	}
	return ch, nil
}

func sampleBoth(reps [2]*replica) ([2]sample, error) {
	var out [2]sample
	for i, r := range reps {
		s, err := r.sample()
		if err != nil {
			return out, err
		}
		out[i] = s
	}
	return out, nil
}

// waitContent polls file every 10ms until it holds want; it returns the time since start.
func waitContent(ctx context.Context, file string, want []byte, start time.Time) (time.Duration, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if fi, err := os.Stat(file); err == nil && fi.Size() == int64(len(want)) {
			if got, err := os.ReadFile(file); err == nil && bytes.Equal(got, want) {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s did not get the change within the time allowed: %w", file, ctx.Err())
		case <-t.C:
		}
	}
}

// waitObject polls the bucket every 50ms (each lookup costs the memory backend a scan of the bucket)
// until the object exists; it returns the time since start, or 0 if ctx ends first.
func waitObject(ctx context.Context, gcs *fakeGCS, bucket, name string, start time.Time) time.Duration {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if ok, err := gcs.Exists(ctx, bucket, name); err == nil && ok {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}

// listFirstPage fetches one 1,000-object page of the listing, which is what a page costs the emulator.
func listFirstPage(ctx context.Context, g *fakeGCS, bucket string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		g.BaseURL+"/storage/v1/b/"+url.PathEscape(bucket)+"/o?maxResults=1000&prefix="+url.QueryEscape(prefix+"/"), nil)
	if err != nil {
		return err
	}
	resp, err := g.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("listing one page: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("listing one page: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listing one page: HTTP %d", resp.StatusCode)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// writeScaleLines writes one size's medians as Go benchmark lines.
func (b *bench) writeScaleLines(sz *scaleSize) {
	for _, kind := range []struct {
		name string
		chs  []scaleChange
	}{{"Local", sz.Local}, {"Remote", sz.Remote}} {
		for i, rep := range []string{"a", "b"} {
			st := statsOf(kind.chs, sz, i)
			extra := []metric{{st.CPUNet.Seconds() * 1000, "cpu-ms/op"}, {float64(st.Written), "written-B/op"}}
			for _, op := range scaleOps {
				extra = append(extra, metric{st.Requests[op], op + "/op"})
			}
			fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Scale%s/files=%d/replica=%s", kind.name, sz.Files, rep),
				st.Propagation, extra...))
		}
	}
}

// changeStats are the medians over a size's changes of one kind, for one replica.
type changeStats struct {
	Propagation, PropagationMax, Uploaded, Window time.Duration
	CPURaw, CPUNet                                time.Duration // CPUNet: less the polls' CPU (pollCPU)
	Requests                                      map[string]float64
	Written                                       int64
}

// pollCPU is what one listed page costs a replica while idle: its idle CPU over the idle list requests.
// With nothing changing a replica does nothing but poll, and a poll is its pages; the poll rate itself is
// not constant (a poll starts when the last one has ended and a tick is due, and a listing of 20 pages
// takes seconds on a busy emulator), so the polls inside a change's window are taken out per page, not
// per second.
func pollCPU(idle cost, idleWindow time.Duration) (perPage time.Duration, perSecond float64) {
	if pages := idle.Requests["list"]; pages > 0 {
		return time.Duration(float64(idle.CPU) / pages), 0
	}
	if idleWindow > 0 {
		return 0, float64(idle.CPU) / float64(idleWindow)
	}
	return 0, 0
}

func changeStatsOf(chs []scaleChange, idle cost, idleWindow time.Duration, rep int) changeStats {
	st := changeStats{Requests: map[string]float64{}}
	if len(chs) == 0 {
		return st
	}
	perPage, perSecond := pollCPU(idle, idleWindow)
	var props, ups, wins, raw, net, written []time.Duration
	reqs := map[string][]time.Duration{}
	for _, ch := range chs {
		c := ch.Cost[rep]
		props, ups, wins = append(props, ch.Propagation), append(ups, ch.Uploaded), append(wins, ch.Window)
		raw = append(raw, c.CPU)
		polls := time.Duration(c.Requests["list"]*float64(perPage)) + time.Duration(perSecond*float64(ch.Window))
		net = append(net, c.CPU-polls)
		written = append(written, time.Duration(c.Written))
		for _, op := range scaleOps {
			// In units of 1/1000, so the median helper (on durations) keeps halves.
			reqs[op] = append(reqs[op], time.Duration(1000*c.Requests[op]))
		}
	}
	st.Propagation, st.PropagationMax = median(props), percentile(props, 100)
	st.Uploaded, st.Window = median(ups), median(wins)
	st.CPURaw, st.CPUNet = median(raw), median(net)
	st.Written = int64(median(written))
	for _, op := range scaleOps {
		st.Requests[op] = float64(median(reqs[op])) / 1000
	}
	return st
}

func statsOf(chs []scaleChange, sz *scaleSize, rep int) changeStats {
	idle, window := sz.Idle[rep], sz.IdleWindow
	if a := sz.IdleAfter[rep]; a.Requests["list"] > 0 && idle.Requests["list"] > 0 &&
		float64(a.CPU)/a.Requests["list"] < float64(idle.CPU)/idle.Requests["list"] {
		idle, window = a, sz.IdleAfterWindow
	}
	return changeStatsOf(chs, idle, window, rep)
}
