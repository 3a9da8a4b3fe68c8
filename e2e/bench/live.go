package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// replica is one long-running filesync process.
type replica struct {
	name    string
	dir     string
	addr    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has exited; waitErr then holds its exit status
	waitErr error
	http    *http.Client
}

// startReplica starts filesync (-filesync) as replica name on a port of the bench's range, with env added
// to its environment and extra flags.
func startReplica(name, dir, remote, gcsHost, logPath string, env []string, extra ...string) (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", logPath, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"--dir", dir, "--remote", remote, "--listen", addr, "--log-format", "text"}, extra...)
	cmd := exec.Command(filesyncBin, args...)
	cmd.Env = append(append(os.Environ(), "STORAGE_EMULATOR_HOST="+gcsHost, "POD_NAME="+name), env...)
	// Through a pipe (a writer that is not an *os.File), so the log's bytes are written to disk by this
	// process and do not count in the replica's own write_bytes (the scale case reads those).
	out := struct{ io.Writer }{logf}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting filesync %s: %w", name, err)
	}
	r := &replica{name: name, dir: dir, addr: addr, cmd: cmd, started: time.Now(), done: make(chan struct{}),
		http: &http.Client{Timeout: 5 * time.Second}}
	go func() { r.waitErr = cmd.Wait(); logf.Close(); close(r.done) }()
	return r, nil
}

func (r *replica) pid() int { return r.cmd.Process.Pid }

// waitReady waits for /readyz to answer 200 and returns how long that took from now.
func (r *replica) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		resp, err := r.http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-r.done:
			return 0, fmt.Errorf("filesync %s exited before it was ready: %w", r.name, r.waitErr)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("filesync %s not ready within %s", r.name, timeout)
		}
	}
}

// metrics reads /metrics.
func (r *replica) metrics() (harness.Metrics, error) {
	resp, err := r.http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of %s: %w", r.name, err)
	}
	defer resp.Body.Close()
	m, err := harness.ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of %s: %w", r.name, err)
	}
	return m, nil
}

// metric returns the value of an unlabelled metric from /metrics.
func (r *replica) metric(name string) (float64, error) {
	m, err := r.metrics()
	if err != nil {
		return 0, err
	}
	if !m.Has(name) {
		return 0, fmt.Errorf("no metric %s on %s", name, r.name)
	}
	return m.Sum(name), nil
}

// stop sends SIGTERM and waits (killing after 30s).
func (r *replica) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// propagation is one measured write on replica A.
type propagation struct {
	Total    time.Duration // rename into A's dir -> complete in B's dir
	Uploaded time.Duration // rename into A's dir -> the object exists in the bucket
}

// propagate writes size random bytes as rel into a's dir (written to a temp file outside, then renamed
// in, as an atomic writer would) and times until the file is complete in b's dir, polling every 10ms,
// and until the object is in the bucket.
func propagate(ctx context.Context, gcs *fakeGCS, bucket, prefix string, a, b *replica, tmpDir, rel string,
	data []byte) (propagation, error) {
	tmp := filepath.Join(tmpDir, "incoming")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return propagation{}, fmt.Errorf("writing the new file: %w", err)
	}
	dst := filepath.Join(a.dir, filepath.FromSlash(rel))
	target := filepath.Join(b.dir, filepath.FromSlash(rel))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	uploaded := make(chan time.Duration, 1)
	start := time.Now()
	if err := os.Rename(tmp, dst); err != nil {
		return propagation{}, fmt.Errorf("moving the new file into %s: %w", a.dir, err)
	}
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if ok, err := gcs.Exists(ctx, bucket, prefix+"/"+rel); err == nil && ok {
				uploaded <- time.Since(start)
				return
			}
			select {
			case <-ctx.Done():
				uploaded <- 0
				return
			case <-t.C:
			}
		}
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if fi, err := os.Stat(target); err == nil && fi.Size() == int64(len(data)) {
			p := propagation{Total: time.Since(start)}
			p.Uploaded = <-uploaded
			return p, nil
		}
		select {
		case <-ctx.Done():
			return propagation{}, fmt.Errorf("%s did not reach %s within 30s", rel, b.name)
		case <-t.C:
		}
	}
}

// jitter sleeps a random time in [0, d) so the writes are not phase-locked to the poll ticker.
func jitter(ctx context.Context, r *rand.Rand, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(r.Int64N(int64(d)))):
	}
}

// cpuOver measures the CPU share of one core each pid used over d.
func cpuOver(ctx context.Context, d time.Duration, pids ...int) ([]float64, error) {
	before := make([]time.Duration, len(pids))
	for i, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			return nil, err
		}
		before[i] = c
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	elapsed := time.Since(start)
	out := make([]float64, len(pids))
	for i, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			return nil, err
		}
		out[i] = 100 * float64(c-before[i]) / float64(elapsed)
	}
	return out, nil
}
