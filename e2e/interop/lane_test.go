//go:build interop

package interop

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// remote is one test's location: a bucket of its own, a prefix.
type remote struct {
	e      *env
	bucket string
	prefix string
}

// newRemote creates a bucket for the test; its location is gs://BUCKET/site.
func (e *env) newRemote(t *testing.T) remote {
	t.Helper()
	b := strings.ToLower(harness.RandomName("interop"))
	if err := e.gcs.CreateBucket(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return remote{e: e, bucket: b, prefix: "site"}
}

func (r remote) gs() string             { return "gs://" + r.bucket + "/" + r.prefix }
func (r remote) rclone() string         { return "gcs:" + r.bucket + "/" + r.prefix }
func (r remote) object(p string) string { return r.prefix + "/" + p }

// attrs returns the attributes of the object at path p under the prefix.
func (r remote) attrs(t *testing.T, p string) harness.Attrs {
	t.Helper()
	a, err := r.e.gcs.Attrs(context.Background(), r.bucket, r.object(p))
	if err != nil {
		t.Fatalf("object %s: %v", p, err)
	}
	return a
}

// exists reports whether the object at path p under the prefix exists.
func (r remote) exists(t *testing.T, p string) bool {
	t.Helper()
	ok, err := r.e.gcs.Exists(context.Background(), r.bucket, r.object(p))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// file is a test file: content and mtime (whole seconds: what every tool stores).
type file struct {
	data  []byte
	mtime time.Time
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// writeTree writes files into dir with their mtimes.
func writeTree(t *testing.T, dir string, files map[string]file) {
	t.Helper()
	for p, f := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		setMtime(t, full, f.mtime)
	}
}

func setMtime(t *testing.T, full string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(full, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// checkTree fails unless dir (described by where, for the messages) holds exactly files (filesync's own
// .filesync/ aside): the same bytes and the same mtime to the second.
func checkTree(t *testing.T, where, dir string, want map[string]file) {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && rel == ".filesync" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		got[rel] = true
		w, ok := want[rel]
		if !ok {
			t.Errorf("%s: %s: not expected here", where, rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, w.data) {
			t.Errorf("%s: %s: %d bytes differ from the %d written", where, rel, len(b), len(w.data))
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.ModTime().Unix() != w.mtime.Unix() {
			t.Errorf("%s: %s: mtime %s, want %s", where, rel, st.ModTime().UTC().Format(time.RFC3339), w.mtime.UTC().Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if !got[p] {
			t.Errorf("%s: %s: missing", where, p)
		}
	}
}

// mtimeOf returns the mtime of dir/p (the zero time if it does not exist).
func mtimeOf(dir, p string) time.Time {
	st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// runTool runs a tool's command and returns its output, failing the test on an error.
func runTool(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

func (e *env) rclone(t *testing.T, args ...string) string {
	t.Helper()
	return runTool(t, e.tools.RcloneCommand(context.Background(), args...))
}

func (e *env) gcloud(t *testing.T, args ...string) string {
	t.Helper()
	return runTool(t, e.tools.GcloudCommand(context.Background(), args...))
}

// emulatorDeleteQuirk is what gcloud prints, exiting 1, after each delete that fake-gcs-server did carry
// out: its answer to a delete lacks what gcloud reads (ENVIRONMENT notes). Nothing else is excused.
const emulatorDeleteQuirk = "ERROR: 'NoneType' object has no attribute 'items'"

// gcloudDeleting runs a gcloud command that deletes objects: an exit 1 whose only errors are the
// emulator's delete quirk is a success (the test checks the bucket itself).
func (e *env) gcloudDeleting(t *testing.T, args ...string) string {
	t.Helper()
	cmd := e.tools.GcloudCommand(context.Background(), args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return string(out)
	}
	quirk := false
	for line := range strings.Lines(string(out)) {
		switch line = strings.TrimSpace(line); {
		case line == emulatorDeleteQuirk:
			quirk = true
		case strings.HasPrefix(line, "ERROR"):
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	if !quirk {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// filesyncCmd is a filesync command with the flags of every run here: text logs, no HTTP server unless asked for,
// no settle time (the files are written before filesync starts).
func (e *env) filesyncCmd(ctx context.Context, r remote, dir string, extra ...string) *exec.Cmd {
	args := append([]string{"--dir", dir, "--remote", r.gs(), "--log-format", "text", "--listen", "", "--settle", "0s"}, extra...)
	cmd := exec.CommandContext(ctx, e.filesync, args...)
	cmd.Env = append(os.Environ(), "STORAGE_EMULATOR_HOST="+e.gcs.Host(), "POD_NAME=interop")
	return cmd
}

// once runs `filesync --once` (a replica's passes until in sync, then exit) and returns its log.
// stateDir, if not "", keeps the base from run to run, as a pod's state volume does.
func (e *env) once(t *testing.T, r remote, dir, stateDir string, extra ...string) string {
	t.Helper()
	if stateDir != "" {
		extra = append(extra, "--state-dir", stateDir)
	}
	return runTool(t, e.filesyncCmd(context.Background(), r, dir, append([]string{"--once"}, extra...)...))
}

// replica is a running filesync: the sync loop, polling every 200 ms.
type replica struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

// start runs a filesync replica on dir until the test ends.
func (e *env) start(t *testing.T, r remote, name, dir string, extra ...string) *replica {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.filesyncCmd(context.Background(), r, dir, append([]string{"--poll-interval", "200ms"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rep := &replica{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(rep.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-rep.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-rep.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("[%s] log:\n%s", name, b)
		}
	})
	return rep
}

// waitFor polls cond until it holds or deadline passes; it returns whether it held.
func waitFor(cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// warnings returns the WARN and ERROR lines of a text log.
func warnings(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
