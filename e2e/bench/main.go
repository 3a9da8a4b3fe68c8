// Command bench runs filesync and its peers (rclone, gcloud storage rsync) on the same generated
// WordPress-like datasets against one local fake-gcs-server, in one run, and prints medians and ratios.
// It also measures filesync's propagation latency between two replicas, its idle CPU and its peak RSS
// with 100,000 known files. Raw per-run numbers are written in the Go benchmark format for benchstat.
//
// Run it with `make bench` (which builds bin/filesync and installs the tools), or from e2e/:
//
//	go run ./bench -runs 1 -cases restore,push
//
// Every flag has an environment twin (BENCH_RUNS, BENCH_CASES, ...); see -help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// filesyncBin is the filesync binary measured (-filesync, default ROOT/bin/filesync).
var filesyncBin string

var allCases = []string{"restore", "push", "restore20k", "push20k", "latency", "latency20k", "idle", "propagation",
	"rss100k", "scale", "notify", "ready", "cache"}

type options struct {
	root        string
	out         string
	work        string
	runs        int
	runs20k     int
	samples     int
	idle        time.Duration
	cases       []string
	peers       []string
	peers20k    []string
	keep        bool
	fileSizeKiB int
	// The latency mode (cases latency, latency20k).
	delays         []time.Duration
	latencyRuns    int
	latencyRuns20k int
	latencyOps     []string
	// curve: --restore-transfers values the latency mode's restore also runs filesync with, at every delay.
	curve []int
	// The scale case.
	scaleSizes   []int
	scaleBackend string
	scaleChanges int
	ports        string
	filesync     string
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var cases, peers, peers20k string
	e := harness.NewEnv(nil)
	fs.StringVar(&o.root, "root", e.String("BENCH_ROOT", ".."), "repository root (bin/ holds filesync, rclone, fake-gcs-server) (env BENCH_ROOT)")
	fs.StringVar(&o.out, "out", e.String("BENCH_OUT", ""), "results directory (default ROOT/_artifacts/bench/TIMESTAMP) (env BENCH_OUT)")
	fs.StringVar(&o.work, "work", e.String("BENCH_WORK", ""), "scratch directory for datasets and copies (default a new temp dir) (env BENCH_WORK)")
	fs.IntVar(&o.runs, "runs", e.Int("BENCH_RUNS", 5), "runs per tool of the 2,000-file restore and push (env BENCH_RUNS)")
	fs.IntVar(&o.runs20k, "runs-20k", e.Int("BENCH_RUNS_20K", 2), "runs per tool of the 20,000-file restore and push (env BENCH_RUNS_20K)")
	fs.IntVar(&o.samples, "samples", e.Int("BENCH_SAMPLES", 30), "propagation samples (env BENCH_SAMPLES)")
	fs.DurationVar(&o.idle, "idle", e.Duration("BENCH_IDLE", 60*time.Second), "idle CPU measurement window (env BENCH_IDLE)")
	fs.IntVar(&o.fileSizeKiB, "file-kib", e.Int("BENCH_FILE_KIB", 100), "size of each propagation write in KiB (env BENCH_FILE_KIB)")
	fs.StringVar(&cases, "cases", e.String("BENCH_CASES", strings.Join(allCases, ",")), "comma-separated cases: "+strings.Join(allCases, ",")+" (env BENCH_CASES)")
	fs.StringVar(&peers, "peers", e.String("BENCH_PEERS", "rclone,gcloud"), "comma-separated peers: rclone,gcloud (env BENCH_PEERS)")
	fs.StringVar(&peers20k, "peers-20k", e.String("BENCH_PEERS_20K", "rclone"), "peers of the 20,000-file cases, a subset of -peers (gcloud takes minutes per run there) (env BENCH_PEERS_20K)")
	fs.BoolVar(&o.keep, "keep", e.Bool("BENCH_KEEP"), "keep the scratch directory (env BENCH_KEEP=1)")
	o.delays = e.DurationList("BENCH_DELAYS", []time.Duration{20 * time.Millisecond, 50 * time.Millisecond})
	fs.Func("delays", "comma-separated delays the latency proxy adds to every request; 0 is always measured too, for the floor (default 20ms,50ms) (env BENCH_DELAYS)",
		listFlag(&o.delays, harness.ParseDurationList))
	fs.IntVar(&o.latencyRuns, "latency-runs", e.Int("BENCH_LATENCY_RUNS", 3), "runs per tool and delay of the 2,000-file latency mode (env BENCH_LATENCY_RUNS)")
	fs.IntVar(&o.latencyRuns20k, "latency-runs-20k", e.Int("BENCH_LATENCY_RUNS_20K", 1), "runs per tool and delay of the 20,000-file latency mode (env BENCH_LATENCY_RUNS_20K)")
	var latencyOps string
	fs.StringVar(&latencyOps, "latency-ops", e.String("BENCH_LATENCY_OPS", "restore,push"), "operations of the latency mode: restore,push (env BENCH_LATENCY_OPS)")
	o.curve = e.IntList("BENCH_RESTORE_TRANSFERS", nil)
	fs.Func("restore-transfers", "comma-separated --restore-transfers values the latency mode's restore also runs filesync with, "+
		"at every delay, for the curve behind the default (e.g. 8,16,32,64,128; default none) (env BENCH_RESTORE_TRANSFERS)",
		listFlag(&o.curve, harness.ParseIntList))
	o.scaleSizes = e.IntList("BENCH_SCALE_SIZES", []int{2000, 20000})
	fs.Func("scale-sizes", "comma-separated numbers of files of the scale case (default 2000,20000; 100000 is accepted, see docs/benchmarks.md for how long it takes) (env BENCH_SCALE_SIZES)",
		listFlag(&o.scaleSizes, harness.ParseIntList))
	fs.StringVar(&o.scaleBackend, "scale-backend", e.String("BENCH_SCALE_BACKEND", "memory"), "fake-gcs-server backend of the scale case: memory (preloaded with -data) or filesystem (env BENCH_SCALE_BACKEND)")
	fs.IntVar(&o.scaleChanges, "scale-changes", e.Int("BENCH_SCALE_CHANGES", 20), "local writes, and bucket changes, per size of the scale case (env BENCH_SCALE_CHANGES)")
	fs.StringVar(&o.filesync, "filesync", e.String("BENCH_FILESYNC", ""), "the filesync binary to measure (default ROOT/bin/filesync, which `make bench` builds) (env BENCH_FILESYNC)")
	fs.StringVar(&o.ports, "ports", e.String("BENCH_PORTS", "46000-46999"), "LOW-HIGH: the ports the bench's servers and replicas listen on (env BENCH_PORTS)")
	if err := e.Err(); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.cases, o.peers = splitList(cases), splitList(peers)
	o.latencyOps = splitList(latencyOps)
	for _, op := range o.latencyOps {
		if op != "restore" && op != "push" {
			return o, fmt.Errorf("-latency-ops (BENCH_LATENCY_OPS): unknown operation %q (known: restore,push)", op)
		}
	}
	if len(o.latencyOps) == 0 {
		return o, errors.New("-latency-ops (BENCH_LATENCY_OPS) is empty")
	}
	for _, p := range splitList(peers20k) {
		if slices.Contains(o.peers, p) {
			o.peers20k = append(o.peers20k, p)
		}
	}
	for _, c := range o.cases {
		if !slices.Contains(allCases, c) {
			return o, fmt.Errorf("unknown case %q (known: %s)", c, strings.Join(allCases, ","))
		}
	}
	for _, p := range o.peers {
		if p != "rclone" && p != "gcloud" {
			return o, fmt.Errorf("unknown peer %q (known: rclone,gcloud)", p)
		}
	}
	if o.runs < 1 || o.runs20k < 1 || o.samples < 1 || o.latencyRuns < 1 || o.latencyRuns20k < 1 || o.scaleChanges < 1 {
		return o, errors.New("-runs, -runs-20k, -samples, -latency-runs, -latency-runs-20k and -scale-changes must be at least 1")
	}
	for _, d := range o.delays {
		if d < 0 || d > time.Second {
			return o, fmt.Errorf("-delays (BENCH_DELAYS): %s is not within 0..1s", d)
		}
	}
	for _, n := range o.curve {
		if n < 1 || n > 1024 {
			return o, fmt.Errorf("-restore-transfers (BENCH_RESTORE_TRANSFERS): %d is not within 1..1024", n)
		}
	}
	for _, n := range o.scaleSizes {
		if n < 100 || n > 1000000 {
			return o, fmt.Errorf("-scale-sizes (BENCH_SCALE_SIZES): %d is not within 100..1000000", n)
		}
	}
	if o.scaleBackend != "memory" && o.scaleBackend != "filesystem" {
		return o, fmt.Errorf("-scale-backend (BENCH_SCALE_BACKEND) %q: want memory or filesystem", o.scaleBackend)
	}
	r, err := parsePortRange(o.ports)
	if err != nil {
		return o, fmt.Errorf("-ports (BENCH_PORTS): %w", err)
	}
	portRange = r
	return o, nil
}

// listFlag sets *dst from a flag's comma-separated value.
func listFlag[T any](dst *[]T, parse func(string) ([]T, error)) func(string) error {
	return func(s string) error {
		v, err := parse(s)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{}))
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("bench", "err", err)
		os.Exit(2)
	}
	if err := runBench(ctx, log, o); err != nil {
		log.Error("bench failed", "err", err)
		stop()
		os.Exit(1)
	}
}

func runBench(ctx context.Context, log *slog.Logger, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return fmt.Errorf("resolving the root: %w", err)
	}
	bin := filepath.Join(root, "bin")
	filesyncBin = filepath.Join(bin, "filesync")
	if o.filesync != "" {
		if filesyncBin, err = filepath.Abs(o.filesync); err != nil {
			return fmt.Errorf("resolving -filesync: %w", err)
		}
	}
	for _, p := range []string{filesyncBin, filepath.Join(bin, "fake-gcs-server")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s is missing (run `make bench`, which builds and installs it): %w", p, err)
		}
	}
	gcloud := ""
	if slices.Contains(o.peers, "gcloud") {
		if gcloud, err = exec.LookPath("gcloud"); err != nil {
			return fmt.Errorf("gcloud is not installed; drop it with BENCH_PEERS=rclone: %w", err)
		}
	}
	if slices.Contains(o.peers, "rclone") || slices.Contains(o.cases, "latency") || slices.Contains(o.cases, "latency20k") {
		if _, err := os.Stat(filepath.Join(bin, "rclone")); err != nil {
			return fmt.Errorf("bin/rclone is missing (make bench installs it): %w", err)
		}
	}
	if o.out == "" {
		o.out = filepath.Join(root, "_artifacts", "bench", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(filepath.Join(o.out, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.out, err)
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "filesync-bench-"); err != nil {
			return fmt.Errorf("creating the scratch directory: %w", err)
		}
	}
	if !o.keep {
		defer os.RemoveAll(o.work)
	}

	b := &bench{opt: o, log: log, bin: bin, logDir: filepath.Join(o.out, "logs"), datasets: map[string]*prepared{},
		seeded: map[string]string{}}
	b.rep = newReport(ctx, bin, gcloud, o)
	rawPath := filepath.Join(o.out, "bench.txt")
	if b.raw, err = os.Create(rawPath); err != nil {
		return fmt.Errorf("creating %s: %w", rawPath, err)
	}
	defer b.raw.Close()
	fmt.Fprintf(b.raw, "goos: linux\ngoarch: %s\npkg: github.com/filesync/filesync/e2e/bench\ncpu: %s\n",
		goarch(), b.rep.CPUModel)

	if b.gcs, err = startFakeGCS(ctx, filepath.Join(bin, "fake-gcs-server"), filepath.Join(b.logDir, "fake-gcs-server.log"), gcsOptions{}); err != nil {
		return err
	}
	defer b.gcs.stop()
	if b.tools, err = newToolSet(ctx, bin, gcloud, o.work, b.logDir, b.gcs.host()); err != nil {
		return err
	}
	log.Info("bench", "out", o.out, "work", o.work, "fake-gcs-server", b.gcs.host(), "cases", o.cases,
		"peers", o.peers, "runs", o.runs, "runs20k", o.runs20k)

	var failed []string
	for _, c := range allCases { // a fixed order: the live cases add files to their bucket
		if !slices.Contains(o.cases, c) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		b.rep.caseStart(c)
		var err error
		switch c {
		case "restore":
			err = b.transfer(ctx, "restore", spec2k(), o.runs, o.peers)
		case "push":
			err = b.transfer(ctx, "push", spec2k(), o.runs, o.peers)
		case "restore20k":
			err = b.transfer(ctx, "restore", spec20k(), o.runs20k, o.peers20k)
		case "push20k":
			err = b.transfer(ctx, "push", spec20k(), o.runs20k, o.peers20k)
		case "latency":
			err = b.latency(ctx, spec2k(), o.latencyRuns)
		case "latency20k":
			err = b.latency(ctx, spec20k(), o.latencyRuns20k)
		case "scale":
			err = b.scale(ctx)
		case "idle", "propagation":
			if c == "propagation" && slices.Contains(o.cases, "idle") {
				continue // measured in the same live session as idle
			}
			err = b.live(ctx, slices.Contains(o.cases, "idle"), slices.Contains(o.cases, "propagation"))
		case "rss100k":
			err = b.rss100k(ctx)
		case "notify":
			err = b.notify(ctx)
		case "ready":
			err = b.ready(ctx)
		case "cache":
			err = b.cache(ctx)
		}
		b.rep.caseEnd(c)
		if err != nil {
			log.Error("case failed", "case", c, "err", err)
			b.rep.Failures = append(b.rep.Failures, fmt.Sprintf("%s: %v", c, err))
			failed = append(failed, c)
		}
	}
	if b.fs != nil {
		b.fs.gcs.stop()
	}
	summary := b.rep.render(o)
	fmt.Println(summary)
	if err := os.WriteFile(filepath.Join(o.out, "summary.md"), []byte(summary), 0o644); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	fmt.Printf("raw results: %s\ncompare:     bin/benchstat -col /tool %s\n", rawPath, rawPath)
	if len(failed) > 0 {
		return fmt.Errorf("failed cases: %s", strings.Join(failed, ", "))
	}
	return ctx.Err()
}
