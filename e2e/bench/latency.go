package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The latency mode's tools: filesync and rclone twice, with its defaults and with --transfers 8
// --checkers 16 (issue 13).
var latencyTools = []string{"filesync", rcloneDefaults, rcloneT8C16}

// The concurrency filesync runs with in the latency mode, spelled out on its command line so the floor
// and the command agree: a --once pass runs before the sidecar is ready, and every transfer of a pass before
// ready, uploads included, runs --restore-transfers at a time (sidecar/internal/syncer/execute.go), so the
// push runs at it too, not at --transfers.
const latencyTransfers = 64

// latencyResult is one dataset's latency mode: every tool's restore and push at every delay.
type latencyResult struct {
	Dataset   string
	Files     int
	Bytes     int64
	FSBackend bool
	Runs      int
	Delays    []time.Duration // 0 first: the loopback baseline of the floor
	Tools     []string
	// Results by op ("restore", "push"), delay and tool.
	Results  map[latencyKey][]latencyRun
	Commands map[string]string // op + " " + tool -> command line
	Server   string            // the server's command line
	// Curve: filesync's restore by --restore-transfers (BENCH_RESTORE_TRANSFERS), by delay and value.
	Curve map[curveKey][]latencyRun
	// Loopback throughput in bytes per second, before and after the runs (measureThroughput).
	DownBefore, DownAfter, UpBefore, UpAfter float64
	ThroughputFiles                          int
	ThroughputBytes                          int64
}

type latencyKey struct {
	Op    string
	Delay time.Duration
	Tool  string
}

type curveKey struct {
	Delay     time.Duration
	Transfers int
}

type latencyRun struct {
	run
	Requests int64 // requests the proxy forwarded during the run
}

// withZero returns the delays with 0 first (once) and no duplicates, in the given order otherwise.
func withZero(delays []time.Duration) []time.Duration {
	out := []time.Duration{0}
	for _, d := range delays {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// latencyFloor is what no tool can beat with the given concurrency: every file costs one request of the
// delay, concurrency of them at a time, and the bytes move at the loopback throughput (bytes per second,
// measured in the same run).
func latencyFloor(files int, delay time.Duration, concurrency int, bytes int64, throughput float64) time.Duration {
	if concurrency < 1 || throughput <= 0 {
		return 0
	}
	perRequest := time.Duration(int64(files) * int64(delay) / int64(concurrency))
	return perRequest + time.Duration(float64(bytes)/throughput*float64(time.Second))
}

// loopbackThroughput is the bytes per second the op's bytes move at over loopback with no per-file cost to
// speak of: the best of the harness's own transfers of the dataset's largest files, measured directly
// against the server (no proxy) before and after the runs.
func (r *latencyResult) loopbackThroughput(op string) float64 {
	if op == "push" {
		return max(r.UpBefore, r.UpAfter)
	}
	return max(r.DownBefore, r.DownAfter)
}

// floor is the op's floor at delay for filesync's concurrency.
func (r *latencyResult) floor(op string, delay time.Duration) time.Duration {
	return latencyFloor(r.Files, delay, latencyTransfers, r.Bytes, r.loopbackThroughput(op))
}

// throughputSample is how many of the largest files the throughput is measured with: the largest files
// until they hold this many bytes.
const throughputSample = 48 * mb

// largest returns the biggest files of ds until they hold at least n bytes (all of them if fewer).
func largest(files []file, n int64) []file {
	s := slices.Clone(files)
	slices.SortFunc(s, func(a, b file) int { return cmp.Compare(b.Size, a.Size) })
	var sum int64
	for i, f := range s {
		sum += f.Size
		if sum >= n {
			return s[:i+1]
		}
	}
	return s
}

// measureThroughput downloads the largest files of the dataset from bucket, then uploads them into a
// scratch bucket, 8 at a time, straight to the server; it returns bytes per second each way.
func (b *bench) measureThroughput(ctx context.Context, srv *server, bucket string, ds *prepared) (down, up float64, err error) {
	pick := largest(ds.files, throughputSample)
	total := totalBytes(pick)
	start := time.Now()
	err = parallel(ctx, len(pick), 8, func(ctx context.Context, i int) error {
		data, err := srv.gcs.Read(ctx, bucket, prefix+"/"+pick[i].Rel)
		if err == nil && int64(len(data)) != pick[i].Size {
			err = fmt.Errorf("read %s: %d bytes, want %d", pick[i].Rel, len(data), pick[i].Size)
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measuring the download throughput: %w", err)
	}
	down = float64(total) / time.Since(start).Seconds()
	const scratch = "latency-throughput"
	if err := srv.gcs.CreateBucket(ctx, scratch); err != nil {
		return 0, 0, err
	}
	defer b.dropBucket(context.WithoutCancel(ctx), srv, scratch)
	contents := make([][]byte, len(pick))
	for i, f := range pick {
		if contents[i], err = os.ReadFile(filepath.Join(ds.dir, filepath.FromSlash(f.Rel))); err != nil {
			return 0, 0, fmt.Errorf("measuring the upload throughput: %w", err)
		}
	}
	start = time.Now()
	err = parallel(ctx, len(pick), 8, func(ctx context.Context, i int) error {
		return srv.gcs.Upload(ctx, scratch, prefix+"/"+pick[i].Rel, contents[i])
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measuring the upload throughput: %w", err)
	}
	up = float64(total) / time.Since(start).Seconds()
	b.log.Info("loopback throughput", "files", len(pick), "MiB", total/mb, "down_MiBps", down/mb, "up_MiBps", up/mb)
	return down, up, nil
}

// latency runs the restore and the push of a dataset through a latency proxy in front of a fake-gcs-server
// of its own, at delay 0 and at every delay of -delays, every tool interleaved (the order rotating from
// run to run).
func (b *bench) latency(ctx context.Context, spec datasetSpec, runs int) (err error) {
	ds, err := b.dataset(spec)
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(b.logDir, "latency-proxy-"+spec.Name+".log"))
	if err != nil {
		return fmt.Errorf("creating the proxy log: %w", err)
	}
	defer logf.Close()
	errLog := log.New(logf, "", log.LstdFlags)
	proxy, err := startLatencyProxy(errLog)
	if err != nil {
		return err
	}
	defer proxy.stop()
	opt := gcsOptions{Front: proxy.addr()}
	if spec.Files >= bigDataset {
		opt.FSRoot = filepath.Join(b.opt.work, "gcs-fs-latency-"+spec.Name)
		defer os.RemoveAll(opt.FSRoot)
	}
	gcs, err := startFakeGCS(ctx, filepath.Join(b.bin, "fake-gcs-server"),
		filepath.Join(b.logDir, "fake-gcs-server-latency-"+spec.Name+".log"), opt)
	if err != nil {
		return err
	}
	defer gcs.stop()
	if err := proxy.setTarget(gcs.BaseURL, errLog); err != nil {
		return err
	}
	tools, err := newToolSet(ctx, b.bin, "", filepath.Join(b.opt.work, "tools-latency-"+spec.Name), b.logDir, proxy.addr())
	if err != nil {
		return err
	}
	tools.filesyncFlags = map[string][]string{
		"restore": {"--restore-transfers", fmt.Sprint(latencyTransfers)},
		"push":    {"--restore-transfers", fmt.Sprint(latencyTransfers)},
	}
	srv := &server{gcs: gcs, tools: tools, fsRoot: opt.FSRoot}
	// The harness seeds, checks and empties buckets directly, not through the proxy.
	const src = "latency-src"
	if err := b.fill(ctx, srv, src, ds); err != nil {
		return err
	}
	res := &latencyResult{Dataset: spec.Name, Files: len(ds.files), Bytes: totalBytes(ds.files),
		FSBackend: opt.FSRoot != "", Runs: runs, Delays: withZero(b.opt.delays), Tools: latencyTools,
		Results: map[latencyKey][]latencyRun{}, Commands: map[string]string{}, Server: gcs.commandLine(),
		Curve: map[curveKey][]latencyRun{}}
	b.rep.Latency = append(b.rep.Latency, res)
	pick := largest(ds.files, throughputSample)
	res.ThroughputFiles, res.ThroughputBytes = len(pick), totalBytes(pick)
	if res.DownBefore, res.UpBefore, err = b.measureThroughput(ctx, srv, src, ds); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			res.DownAfter, res.UpAfter, err = b.measureThroughput(ctx, srv, src, ds)
		}
	}()
	for _, delay := range res.Delays {
		proxy.setDelay(delay)
		srv.tag = fmt.Sprintf("d%dms-", delay.Milliseconds())
		for i := range runs {
			for _, op := range b.opt.latencyOps {
				for _, tool := range toolOrder(i, latencyTools[1:]) {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					before := proxy.requests.Load()
					r, cmdline, err := b.transferOnce(ctx, srv, op, tool, ds, src, i)
					if err != nil {
						return fmt.Errorf("%s %s at %s, run %d: %w", tool, op, delay, i+1, err)
					}
					lr := latencyRun{run: r, Requests: proxy.requests.Load() - before}
					k := latencyKey{op, delay, tool}
					res.Results[k] = append(res.Results[k], lr)
					res.Commands[op+" "+tool] = cmdline
					fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Latency%s/delay=%s/tool=%s/files=%d", title(op), delay, tool, len(ds.files)),
						r.Wall, metric{r.CPU.Seconds(), "cpu-sec/op"}, metric{float64(lr.Requests), "requests/op"}))
					b.log.Info("latency run", "op", op, "files", len(ds.files), "delay", delay, "tool", tool, "run", i+1,
						"wall", r.Wall.Round(time.Millisecond), "cpu", r.CPU.Round(time.Millisecond), "requests", lr.Requests,
						"load", loadAvg())
				}
			}
			if slices.Contains(b.opt.latencyOps, "restore") {
				if err := b.curveRuns(ctx, srv, res, ds, src, delay, i, proxy.requests.Load); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// curveRuns runs filesync's restore once with every --restore-transfers value of the curve, in a rotating
// order, and puts the flags back as they were.
func (b *bench) curveRuns(ctx context.Context, srv *server, res *latencyResult, ds *prepared, src string,
	delay time.Duration, i int, requests func() int64) error {
	flags, tag := srv.tools.filesyncFlags["restore"], srv.tag
	defer func() { srv.tools.filesyncFlags["restore"], srv.tag = flags, tag }()
	for j := range b.opt.curve {
		n := b.opt.curve[(i+j)%len(b.opt.curve)]
		srv.tools.filesyncFlags["restore"] = []string{"--restore-transfers", fmt.Sprint(n)}
		srv.tag = fmt.Sprintf("%st%d-", tag, n)
		before := requests()
		r, _, err := b.transferOnce(ctx, srv, "restore", "filesync", ds, src, i)
		if err != nil {
			return fmt.Errorf("filesync restore --restore-transfers %d at %s, run %d: %w", n, delay, i+1, err)
		}
		k := curveKey{delay, n}
		res.Curve[k] = append(res.Curve[k], latencyRun{run: r, Requests: requests() - before})
		fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("LatencyRestore/delay=%s/tool=filesync-t%d/files=%d", delay, n, len(ds.files)),
			r.Wall, metric{r.CPU.Seconds(), "cpu-sec/op"}))
		b.log.Info("curve run", "files", len(ds.files), "delay", delay, "restore_transfers", n, "run", i+1,
			"wall", r.Wall.Round(time.Millisecond), "cpu", r.CPU.Round(time.Millisecond), "load", loadAvg())
	}
	return nil
}

// has reports whether op was measured at all.
func (r *latencyResult) has(op string) bool {
	for k := range r.Results {
		if k.Op == op {
			return true
		}
	}
	return false
}
