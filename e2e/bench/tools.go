package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/filesync/filesync/e2e/internal/tools"
)

// run is what one timed tool invocation cost.
type run struct {
	Wall   time.Duration
	CPU    time.Duration // user+sys of the process and the children it waited for
	MaxRSS int64         // KiB, the largest resident set of the process (or a waited-for child)
}

// toolSet knows how to run each tool against the fake-gcs-server.
type toolSet struct {
	*tools.Clients
	bin    string // the repo's bin/ (filesync, rclone)
	host   string // HOST:PORT the tools talk to: the server itself, or a latency proxy in front of it
	logDir string
	// filesyncFlags are extra filesync flags per op (the latency mode spells out the concurrency its floor
	// assumes).
	filesyncFlags map[string][]string
}

// newToolSet writes the peers' private configurations into work (never ~/.config), making it if missing.
func newToolSet(ctx context.Context, bin, gcloud, work, logDir, host string) (*toolSet, error) {
	c, err := tools.Configure(ctx, work, host, filepath.Join(bin, "rclone"), gcloud)
	if err != nil {
		return nil, err
	}
	return &toolSet{Clients: c, bin: bin, host: host, logDir: logDir}, nil
}

// The rclone variants: "rclone" is the loopback cases' peer; the latency mode compares rclone with its
// defaults (--transfers 4 --checkers 8, listing directory by directory) and with twice that, as issue 13
// asks.
const (
	rcloneDefaults = "rclone-defaults"
	rcloneT8C16    = "rclone-t8c16"
)

var rcloneFlags = map[string][]string{
	"rclone":       {"--transfers", "8", "--checkers", "16", "--fast-list"},
	rcloneDefaults: nil,
	rcloneT8C16:    {"--transfers", "8", "--checkers", "16"},
}

// command returns the command that makes dir a copy of gs://bucket/prefix (restore) or the bucket
// location a copy of dir (push).
func (t *toolSet) command(ctx context.Context, tool, op, bucket, prefix, dir string) (*exec.Cmd, error) {
	remote := "gs://" + bucket + "/" + prefix
	var cmd *exec.Cmd
	switch tool {
	case "filesync":
		args := []string{"--dir", dir, "--remote", remote, "--once", "--log-format", "text", "--listen", ""}
		if op == "push" {
			args = append(args, "--settle", "0s")
		}
		args = append(args, t.filesyncFlags[op]...)
		cmd = exec.CommandContext(ctx, filesyncBin, args...)
		cmd.Env = append(os.Environ(), "STORAGE_EMULATOR_HOST="+t.host)
	case "rclone", rcloneDefaults, rcloneT8C16:
		src, dst := "gcs:"+bucket+"/"+prefix, dir
		if op == "push" {
			src, dst = dst, src
		}
		cmd = t.RcloneCommand(ctx, append([]string{"copy", src, dst}, rcloneFlags[tool]...)...)
	case "gcloud":
		if t.Gcloud == "" {
			return nil, fmt.Errorf("gcloud is not installed")
		}
		src, dst := remote, dir
		if op == "push" {
			src, dst = dst, src
		}
		cmd = t.GcloudCommand(ctx, "storage", "rsync", "--recursive", src, dst)
	default:
		return nil, fmt.Errorf("unknown tool %q", tool)
	}
	return cmd, nil
}

// commandLine renders the command for the report, quoting empty or spaced arguments.
func commandLine(cmd *exec.Cmd) string {
	args := make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// timed runs cmd, logging its output to logPath, and measures it. The peak RSS comes from GNU time
// (/usr/bin/time -f %M) when it is installed: the rusage of a child this process starts directly is
// useless for that, because Go starts children with vfork semantics and Linux carries the parent's
// high-water RSS into the child's ru_maxrss at exec (a 200 MiB parent makes /bin/true "use" 200 MiB).
// GNU time forks from its own small image, so its %M is the command's own peak.
func timed(cmd *exec.Cmd, logPath string) (run, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return run{}, fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer logf.Close()
	rssFile := logPath + ".maxrss"
	if timeBin, err := exec.LookPath("/usr/bin/time"); err == nil {
		cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile}, cmd.Args...)
		cmd.Path = timeBin
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed as a whole when the bench is interrupted: killing GNU time alone
	// would leave the tool running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Cancel != nil {
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	}
	start := time.Now()
	err = cmd.Run()
	r := run{Wall: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		r.CPU = ps.UserTime() + ps.SystemTime()
	}
	if b, rerr := os.ReadFile(rssFile); rerr == nil {
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			r.MaxRSS, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
		}
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w (log: %s)", filepath.Base(cmd.Path), err, logPath)
	}
	return r, nil
}

// toolVersion returns the first line of `tool version`, for the report.
func toolVersion(ctx context.Context, path string, args ...string) string {
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// procCPU returns the user+sys CPU time a running process has used so far (from /proc/PID/stat).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// procStatus returns a "VmXxx:" value of /proc/PID/status in KiB.
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the status of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}
