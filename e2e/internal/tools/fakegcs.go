package tools

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// FakeGCS is one fake-gcs-server process (plain HTTP) and the kit's JSON API client for it, to seed,
// inspect and empty buckets outside the tools under test.
type FakeGCS struct {
	*harness.GCS
	cmd     *exec.Cmd
	port    int
	args    []string
	done    chan struct{} // closed when the process has exited; waitErr then holds its exit status
	waitErr error
}

// FakeGCSOptions selects how a fake-gcs-server is started.
type FakeGCSOptions struct {
	// FSRoot selects the filesystem backend rooted there (default: the memory backend).
	FSRoot string
	// Data preloads the directory's buckets (-data: one subdirectory per bucket) when the server starts:
	// much faster than uploading through the API into the memory backend, which scans the whole bucket on
	// every insert (twice, formatting strings).
	Data string
	// Front is the address clients reach the server through (a latency proxy): -external-url and
	// -public-host name it, so the absolute URLs the server hands out (resumable upload sessions) go
	// through it as well. Empty: the server's own address.
	Front string
	// Ready is how long to wait for the server to answer (default 30s; a -data preload takes longer).
	Ready time.Duration
	// Args are more flags (the notify bench's -event.*); Env more environment (PUBSUB_EMULATOR_HOST).
	Args []string
	Env  []string
}

// StartFakeGCS starts fake-gcs-server (plain HTTP on 127.0.0.1:port) with the memory backend, or the
// filesystem backend when o.FSRoot is set (the memory backend scans a bucket's objects linearly on every
// write and read, which makes a 100,000-object bucket quadratic to fill and to download from).
func StartFakeGCS(ctx context.Context, bin, logPath string, port int, o FakeGCSOptions) (*FakeGCS, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the fake-gcs-server log: %w", err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	external := base
	if o.Front != "" {
		external = "http://" + o.Front
	}
	args := []string{"-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
		"-port", strconv.Itoa(port), "-external-url", external, "-log-level", "warn"}
	if o.Front != "" {
		args = append(args, "-public-host", o.Front)
	}
	if o.FSRoot != "" {
		args[3] = "filesystem"
		args = append(args, "-filesystem-root", o.FSRoot)
	}
	if o.Data != "" {
		args = append(args, "-data", o.Data)
	}
	args = append(args, o.Args...)
	if o.Ready <= 0 {
		o.Ready = 30 * time.Second
	}
	cmd := exec.Command(bin, args...)
	if o.Env != nil {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting fake-gcs-server: %w", err)
	}
	g := &FakeGCS{cmd: cmd, port: port, args: args, done: make(chan struct{}), GCS: &harness.GCS{
		BaseURL: base,
		HTTP:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Minute},
		// fake-gcs-server builds the whole listing for every page, so ask for it in one page.
		PageSize: 1000000,
	}}
	go func() { g.waitErr = cmd.Wait(); logf.Close(); close(g.done) }()
	deadline := time.Now().Add(o.Ready)
	for {
		// Each attempt is short and follows ctx: during a -data preload the port accepts connections but
		// answers only once the load is done.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(actx, http.MethodGet, base+"/storage/v1/b", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = g.HTTP.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					cancel()
					return g, nil
				}
			}
		}
		cancel()
		select {
		case <-g.done:
			return nil, fmt.Errorf("fake-gcs-server exited early (%w); see %s", g.waitErr, logPath)
		case <-ctx.Done():
			g.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, fmt.Errorf("fake-gcs-server did not answer on %s within %s; see %s", base, o.Ready, logPath)
		}
	}
}

func (g *FakeGCS) Host() string { return "127.0.0.1:" + strconv.Itoa(g.port) }

// CommandLine is how the server was started, for the report.
func (g *FakeGCS) CommandLine() string { return "fake-gcs-server " + strings.Join(g.args, " ") }

func (g *FakeGCS) Stop() {
	_ = g.cmd.Process.Kill()
	<-g.done
}

// Pid is the server's process id, for reading its CPU time.
func (g *FakeGCS) Pid() int { return g.cmd.Process.Pid }
