package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

type bench struct {
	opt      options
	log      *slog.Logger
	bin      string
	logDir   string
	gcs      *fakeGCS
	tools    *toolSet
	raw      *os.File
	rep      *report
	datasets map[string]*prepared
	seeded   map[string]string // dataset name -> bucket holding it under prefix "data"
	fs       *server           // the filesystem-backend server of the 20,000-file cases, started on first use
}

// server is one fake-gcs-server and the tools configured for it. fsRoot is set for the filesystem backend.
type server struct {
	gcs    *fakeGCS
	tools  *toolSet
	fsRoot string
	tag    string // names the logs and scratch dirs of its runs ("" for the loopback servers)
}

// bigDataset is the size from which a case uses the filesystem backend: the memory backend scans all
// of a bucket's objects (formatting two strings per object) on every object write and read, so
// seeding 20,000 objects alone took more than 7 minutes here, and every push would take as long.
const bigDataset = 10000

// serverFor returns the server of a dataset's cases.
func (b *bench) serverFor(ctx context.Context, spec datasetSpec) (*server, error) {
	if spec.Files < bigDataset {
		return &server{gcs: b.gcs, tools: b.tools}, nil
	}
	if b.fs != nil {
		return b.fs, nil
	}
	root := filepath.Join(b.opt.work, "gcs-fs-big")
	gcs, err := startFakeGCS(ctx, filepath.Join(b.bin, "fake-gcs-server"), filepath.Join(b.logDir, "fake-gcs-server-fs-big.log"), gcsOptions{FSRoot: root})
	if err != nil {
		return nil, err
	}
	tools, err := newToolSet(ctx, b.bin, b.tools.Gcloud, filepath.Join(b.opt.work, "tools-fs"), b.logDir, gcs.host())
	if err != nil {
		gcs.stop()
		return nil, err
	}
	b.fs = &server{gcs: gcs, tools: tools, fsRoot: root}
	return b.fs, nil
}

// dropBucket deletes a bucket: through the API on the memory backend, by removing its directory on the
// filesystem backend (which reads the disk afresh on every request).
func (b *bench) dropBucket(ctx context.Context, srv *server, bucket string) {
	var err error
	if srv.fsRoot != "" {
		err = os.RemoveAll(filepath.Join(srv.fsRoot, bucket))
	} else {
		err = srv.gcs.deleteBucket(ctx, bucket)
	}
	if err != nil {
		b.log.Warn("deleting a bucket", "bucket", bucket, "err", err)
	}
}

// prepared is a dataset generated on local disk.
type prepared struct {
	spec  datasetSpec
	files []file
	dir   string
}

const prefix = "data"

func goarch() string { return runtime.GOARCH }

func (b *bench) dataset(spec datasetSpec) (*prepared, error) {
	if p, ok := b.datasets[spec.Name]; ok {
		return p, nil
	}
	files, err := spec.generate()
	if err != nil {
		return nil, err
	}
	p := &prepared{spec: spec, files: files, dir: filepath.Join(b.opt.work, "datasets", spec.Name)}
	start := time.Now()
	if err := writeFiles(p.dir, files, spec.Seed); err != nil {
		return nil, err
	}
	b.log.Info("dataset written", "name", spec.Name, "files", len(files), "MB", totalBytes(files)/mb,
		"took", time.Since(start).Round(time.Millisecond))
	b.rep.Datasets = append(b.rep.Datasets, fmt.Sprintf("%s: %d files, %.1f MB", spec.Name, len(files),
		float64(totalBytes(files))/mb))
	b.datasets[spec.Name] = p
	return p, nil
}

// seededBucket returns a bucket holding the dataset under "data/", seeding it on first use.
func (b *bench) seededBucket(ctx context.Context, srv *server, ds *prepared) (string, error) {
	if bucket, ok := b.seeded[ds.spec.Name]; ok {
		return bucket, nil
	}
	bucket := "src-" + ds.spec.Name
	if err := b.fill(ctx, srv, bucket, ds); err != nil {
		return "", err
	}
	b.seeded[ds.spec.Name] = bucket
	return bucket, nil
}

// fill creates bucket on srv and puts the dataset under "data/": on the filesystem backend by writing the
// backend's files directly, on the memory backend through the JSON API; then checks the listing.
func (b *bench) fill(ctx context.Context, srv *server, bucket string, ds *prepared) error {
	if err := srv.gcs.CreateBucket(ctx, bucket); err != nil {
		return err
	}
	start := time.Now()
	if srv.fsRoot != "" {
		var readErr error
		content := func(i int) []byte {
			data, err := os.ReadFile(filepath.Join(ds.dir, filepath.FromSlash(ds.files[i].Rel)))
			if err != nil && readErr == nil {
				readErr = err
			}
			return data
		}
		if err := writeFSBackendObjects(srv.fsRoot, bucket, prefix, ds.files, content); err != nil {
			return err
		}
		if readErr != nil {
			return fmt.Errorf("seeding %s: %w", bucket, readErr)
		}
	} else if err := srv.gcs.seed(ctx, bucket, prefix, ds.dir, ds.files); err != nil {
		return err
	}
	objs, err := srv.gcs.list(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	if err := verifyObjects(objs, prefix, ds.files); err != nil {
		return fmt.Errorf("seeding %s: %w", bucket, err)
	}
	b.log.Info("bucket seeded", "bucket", bucket, "objects", len(objs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// toolOrder returns the tools of this run in an order rotated by run, so no tool always goes first.
func toolOrder(run int, peers []string) []string {
	tools := append([]string{"filesync"}, peers...)
	k := run % len(tools)
	return append(slices.Clone(tools[k:]), tools[:k]...)
}

// transfer measures op ("restore": bucket -> empty dir, "push": dir -> empty bucket) for every tool.
func (b *bench) transfer(ctx context.Context, op string, spec datasetSpec, runs int, peers []string) error {
	ds, err := b.dataset(spec)
	if err != nil {
		return err
	}
	srv, err := b.serverFor(ctx, spec)
	if err != nil {
		return err
	}
	var src string
	if op == "restore" {
		if src, err = b.seededBucket(ctx, srv, ds); err != nil {
			return err
		}
	}
	res := &transferResult{Op: op, Dataset: spec.Name, FSBackend: srv.fsRoot != "", Files: len(ds.files), Bytes: totalBytes(ds.files),
		Runs: map[string][]run{}, Commands: map[string]string{}}
	b.rep.Transfers = append(b.rep.Transfers, res)
	for i := range runs {
		for _, tool := range toolOrder(i, peers) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, cmdline, err := b.transferOnce(ctx, srv, op, tool, ds, src, i)
			if err != nil {
				return fmt.Errorf("%s %s run %d: %w", tool, op, i+1, err)
			}
			res.Runs[tool] = append(res.Runs[tool], r)
			res.Commands[tool] = cmdline
			name := fmt.Sprintf("%s/tool=%s/files=%d", title(op), tool, len(ds.files))
			fmt.Fprintln(b.raw, benchLine(name, r.Wall, metric{r.CPU.Seconds(), "cpu-sec/op"},
				metric{float64(r.MaxRSS), "peak-RSS-KiB"}))
			b.log.Info("run", "op", op, "files", len(ds.files), "tool", tool, "run", i+1,
				"wall", r.Wall.Round(time.Millisecond), "cpu", r.CPU.Round(time.Millisecond), "maxrss_mib", r.MaxRSS/1024,
				"load", loadAvg())
		}
	}
	if op == "restore" {
		// The restore source stays seeded only as long as it is needed: the memory backend holds it in RAM.
		b.dropBucket(ctx, srv, src)
		delete(b.seeded, spec.Name)
	}
	return nil
}

func title(op string) string {
	if op == "" {
		return op
	}
	return string(op[0]-'a'+'A') + op[1:]
}

func (b *bench) transferOnce(ctx context.Context, srv *server, op, tool string, ds *prepared, src string, i int) (run, string, error) {
	logPath := filepath.Join(b.logDir, fmt.Sprintf("%s%s-%s-%s-%d.log", srv.tag, op, ds.spec.Name, tool, i+1))
	// measure runs the tool between bucket/prefix and dir and times it; it returns the command line too.
	measure := func(bucket, dir string) (run, string, error) {
		cmd, err := srv.tools.command(ctx, tool, op, bucket, prefix, dir)
		if err != nil {
			return run{}, "", err
		}
		r, err := timed(cmd, logPath)
		return r, commandLine(cmd), err
	}
	switch op {
	case "restore":
		dir := filepath.Join(b.opt.work, "restore-"+tool)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return run{}, "", fmt.Errorf("creating %s: %w", dir, err)
		}
		defer os.RemoveAll(dir)
		r, cl, err := measure(src, dir)
		if err != nil {
			return r, "", err
		}
		return r, cl, verifyDir(dir, ds.files)
	case "push":
		bucket := fmt.Sprintf("push-%s%s-%s-%d", srv.tag, ds.spec.Name, tool, i+1)
		if err := srv.gcs.CreateBucket(ctx, bucket); err != nil {
			return run{}, "", err
		}
		defer b.dropBucket(context.WithoutCancel(ctx), srv, bucket)
		r, cl, err := measure(bucket, ds.dir)
		if err != nil {
			return r, "", err
		}
		objs, err := srv.gcs.list(ctx, bucket, prefix)
		if err != nil {
			return r, "", err
		}
		return r, cl, verifyObjects(objs, prefix, ds.files)
	}
	return run{}, "", fmt.Errorf("unknown op %q", op)
}

// live runs two long-running replicas over a bucket holding the 2,000-file dataset and measures their
// idle CPU and the propagation of new files from A to B.
func (b *bench) live(ctx context.Context, idle, prop bool) error {
	ds, err := b.dataset(spec2k())
	if err != nil {
		return err
	}
	const bucket = "live"
	if err := b.fill(ctx, &server{gcs: b.gcs, tools: b.tools}, bucket, ds); err != nil {
		return err
	}
	defer func() {
		if err := b.gcs.deleteBucket(context.WithoutCancel(ctx), bucket); err != nil {
			b.log.Warn("deleting a bucket", "bucket", bucket, "err", err)
		}
	}()
	lr := &liveResult{Files: len(ds.files), PollInterval: "1s"}
	b.rep.Live = lr
	remote := "gs://" + bucket + "/" + prefix
	var reps []*replica
	defer func() {
		for _, r := range reps {
			r.stop()
		}
	}()
	for _, name := range []string{"a", "b"} {
		r, err := startReplica("replica-"+name, filepath.Join(b.opt.work, "replica-"+name), remote,
			b.gcs.host(), filepath.Join(b.logDir, "live-replica-"+name+".log"), nil, "--poll-interval", "1s")
		if err != nil {
			return err
		}
		reps = append(reps, r)
		lr.Commands = append(lr.Commands, commandLine(r.cmd))
	}
	for _, r := range reps {
		took, err := r.waitReady(ctx, 10*time.Minute)
		if err != nil {
			return err
		}
		b.log.Info("replica ready", "replica", r.name, "after", took.Round(time.Millisecond))
	}
	for _, r := range reps {
		if err := verifyDir(r.dir, ds.files); err != nil {
			return fmt.Errorf("replica %s after its restore: %w", r.name, err)
		}
	}
	a, rb := reps[0], reps[1]
	// Let both settle (the restore's own file events, the first polls) before measuring.
	time.Sleep(5 * time.Second)

	if idle {
		pcts, err := cpuOver(ctx, b.opt.idle, a.pid(), rb.pid(), b.gcs.pid())
		if err != nil {
			return err
		}
		lr.IdleWindow = b.opt.idle
		lr.IdleCPU = pcts[:2]
		lr.IdleServerCPU = pcts[2]
		for i, r := range reps {
			rss, _ := procStatus(r.pid(), "VmRSS")
			hwm, _ := procStatus(r.pid(), "VmHWM")
			lr.RSS = append(lr.RSS, rss)
			lr.HWM = append(lr.HWM, hwm)
			fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Idle/tool=filesync/files=%d/replica=%s", len(ds.files), r.name),
				b.opt.idle, metric{pcts[i], "%cpu"}, metric{float64(hwm), "peak-RSS-KiB"}))
		}
		b.log.Info("idle", "cpu_pct_a", pcts[0], "cpu_pct_b", pcts[1], "cpu_pct_fake_gcs", pcts[2], "hwm_kib", lr.HWM)
	}
	if !prop {
		return nil
	}
	dir := path.Dir(ds.files[0].Rel)
	rnd := rand.New(rand.NewPCG(7, 7))
	data := make([]byte, b.opt.fileSizeKiB*kb)
	lr.FileKiB = b.opt.fileSizeKiB
	for i := range b.opt.samples {
		jitter(ctx, rnd, time.Second)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		rel := fmt.Sprintf("%s/propagation-%03d.jpg", dir, i)
		p, err := propagate(ctx, b.gcs, bucket, prefix, a, rb, b.opt.work, rel, data)
		if err != nil {
			return err
		}
		lr.Total = append(lr.Total, p.Total)
		lr.Uploaded = append(lr.Uploaded, p.Uploaded)
		fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Propagation/tool=filesync/files=%d", len(ds.files)), p.Total,
			metric{p.Uploaded.Seconds(), "upload-sec/op"}))
		b.log.Info("propagation", "sample", i+1, "total", p.Total.Round(time.Millisecond),
			"uploaded", p.Uploaded.Round(time.Millisecond))
	}
	return nil
}

// rss100k restores 100,000 tiny objects with a long-running filesync and reads its peak RSS once it
// is ready and has polled the bucket again.
// restore100k restores the 100,000 objects into an empty directory with filesync --once, as a fresh pod
// starts, and measures its wall time and peak RSS (issue 13: <= 100 MB).
func (b *bench) restore100k(ctx context.Context, gcs *fakeGCS, bucket string, files []file, res *rssResult) error {
	tools, err := newToolSet(ctx, b.bin, "", filepath.Join(b.opt.work, "tools-100k"), b.logDir, gcs.host())
	if err != nil {
		return err
	}
	// Once as it is, once with a soft memory limit (the Component sets GOMEMLIMIT too, 200MiB under 256Mi).
	for _, limit := range []string{"", restoreMemLimit} {
		dir := filepath.Join(b.opt.work, "restore-100k")
		if err := os.MkdirAll(dir, 0o755); err != nil { // an emptyDir exists before the sidecar starts
			return err
		}
		cmd, err := tools.command(ctx, "filesync", "restore", bucket, prefix, dir)
		if err != nil {
			return err
		}
		name := "filesync"
		if limit != "" {
			cmd.Env = append(cmd.Env, "GOMEMLIMIT="+limit)
			name += "-gomemlimit"
		}
		r, err := timed(cmd, filepath.Join(b.logDir, "restore100k-"+name+".log"))
		if err != nil {
			return fmt.Errorf("restore of 100,000 objects (GOMEMLIMIT %q): %w", limit, err)
		}
		if limit == "" {
			res.Restore, res.RestoreCommand = r, commandLine(cmd)
		} else {
			res.RestoreLimited = r
		}
		fmt.Fprintln(b.raw, benchLine("Restore/tool="+name+"/files=100000", r.Wall,
			metric{float64(r.MaxRSS), "peak-RSS-KiB"}, metric{r.CPU.Seconds(), "cpu-s"}))
		b.log.Info("100k restore", "gomemlimit", limit, "wall", r.Wall.Round(time.Millisecond), "cpu", r.CPU.Round(time.Millisecond), "max_rss_kib", r.MaxRSS)
		if err := verifyDir(dir, files); err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// restoreMemLimit is the soft memory limit of the 100,000-object restore's second run.
const restoreMemLimit = "70MiB"

func (b *bench) rss100k(ctx context.Context) error {
	spec := spec100k()
	files, err := spec.generate()
	if err != nil {
		return err
	}
	// A second fake-gcs-server with the filesystem backend: the memory backend is quadratic here.
	gcs, fsRoot, stopGCS, err := b.startFSGCS(ctx, "fs")
	if err != nil {
		return err
	}
	defer stopGCS()
	const bucket = "tiny100k"
	if err := gcs.CreateBucket(ctx, bucket); err != nil {
		return err
	}
	res := &rssResult{Files: len(files)}
	b.rep.RSS = res
	// The same 100,000 files in the bucket and in the replica's directory, with no state: filesync
	// hashes the local files, lists the bucket, finds the same content on both sides and records all of
	// them as known, moving nothing (the transfers of the 2,000- and 20,000-file cases are measured above).
	content := func(i int) []byte {
		return bytes.Repeat([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, int(files[i].Size)/3)
	}
	dir := filepath.Join(b.opt.work, "replica-100k")
	start := time.Now()
	if err := writeFSBackendObjects(fsRoot, bucket, prefix, files, content); err != nil {
		return err
	}
	for i := range files {
		files[i].Size = int64(len(content(i)))
		p := filepath.Join(dir, filepath.FromSlash(files[i].Rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating the 100,000 files: %w", err)
		}
		if err := os.WriteFile(p, content(i), 0o644); err != nil {
			return fmt.Errorf("creating the 100,000 files: %w", err)
		}
	}
	res.Seed = time.Since(start)
	start = time.Now()
	objs, err := gcs.list(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	res.List = time.Since(start)
	if err := verifyObjects(objs, prefix, files); err != nil {
		return err
	}
	b.log.Info("100k seeded", "seed", res.Seed.Round(time.Millisecond), "list", res.List.Round(time.Millisecond))
	if err := b.restore100k(ctx, gcs, bucket, files, res); err != nil {
		return err
	}

	r, err := startReplica("replica-100k", dir, "gs://"+bucket+"/"+prefix, gcs.host(),
		filepath.Join(b.logDir, "rss100k-replica.log"), nil)
	if err != nil {
		return err
	}
	defer r.stop()
	res.Command = commandLine(r.cmd)
	if res.Ready, err = r.waitReady(ctx, 40*time.Minute); err != nil {
		return err
	}
	known, err := r.metric("filesync_known_files")
	if err != nil {
		return err
	}
	res.Known = int64(known)
	res.HWMReady, _ = procStatus(r.pid(), "VmHWM")
	// Keep it running through more polls (each lists all 100,000 objects) before the final reading.
	steady := 60 * time.Second
	cpu, err := cpuOver(ctx, steady, r.pid())
	if err != nil {
		return err
	}
	res.Steady, res.SteadyCPU = steady, cpu[0]
	if res.HWM, err = procStatus(r.pid(), "VmHWM"); err != nil {
		return err
	}
	res.RSS, _ = procStatus(r.pid(), "VmRSS")
	fmt.Fprintln(b.raw, benchLine("RSS/tool=filesync/files=100000", res.Ready,
		metric{float64(res.HWM), "peak-RSS-KiB"}, metric{float64(res.Known), "known-files"}))
	b.log.Info("100k", "ready_after", res.Ready.Round(time.Millisecond), "known", res.Known, "hwm_kib", res.HWM,
		"rss_kib", res.RSS, "steady_cpu_pct", res.SteadyCPU)
	if err := verifyDir(dir, files); err != nil {
		return err
	}
	return nil
}
