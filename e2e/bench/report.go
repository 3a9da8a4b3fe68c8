package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type transferResult struct {
	FSBackend bool
	Op        string
	Dataset   string
	Files     int
	Bytes     int64
	Runs      map[string][]run
	Commands  map[string]string
}

type liveResult struct {
	Files         int
	PollInterval  string
	Commands      []string
	IdleWindow    time.Duration
	IdleCPU       []float64
	IdleServerCPU float64
	RSS, HWM      []int64
	FileKiB       int
	Total         []time.Duration
	Uploaded      []time.Duration
}

type rssResult struct {
	Files     int
	Command   string
	Seed      time.Duration
	List      time.Duration
	Ready     time.Duration
	Known     int64
	HWMReady  int64
	Steady    time.Duration
	SteadyCPU float64
	HWM, RSS  int64
}

// report collects the machine conditions and every case's results, and renders them as Markdown.
type report struct {
	Started   time.Time
	CPUModel  string
	NProc     int
	MemTotal  string
	Versions  []string
	LoadStart string
	TopStart  string
	Cases     []string
	Datasets  []string
	Transfers []*transferResult
	Live      *liveResult
	RSS       *rssResult
	Failures  []string
	caseT     time.Time
	caseLoad  string
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func newReport(ctx context.Context, bin, gcloud string, o options) *report {
	r := &report{Started: time.Now().UTC(), NProc: runtime.NumCPU(), LoadStart: loadAvg(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				r.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if kib, err := procStatusFile("/proc/meminfo", "MemTotal"); err == nil {
		r.MemTotal = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	}
	r.Versions = append(r.Versions,
		"filesync: "+toolVersion(ctx, "git", "-C", filepath.Dir(bin), "describe", "--tags", "--always", "--dirty")+" (bin/filesync from `make build`)",
		"fake-gcs-server: "+moduleVersion(ctx, filepath.Join(bin, "fake-gcs-server"))+" (memory backend, plain http)",
		"go: "+runtime.Version())
	for _, p := range o.peers {
		switch p {
		case "rclone":
			r.Versions = append(r.Versions, "rclone: "+toolVersion(ctx, filepath.Join(bin, "rclone"), "version"))
		case "gcloud":
			r.Versions = append(r.Versions, "gcloud: "+toolVersion(ctx, gcloud, "version"))
		}
	}
	if out, err := exec.CommandContext(ctx, "ps", "-eo", "pcpu,rss,comm", "--sort=-pcpu").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		r.TopStart = strings.Join(lines[:min(len(lines), 9)], "\n")
	}
	return r
}

func procStatusFile(file, key string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			var n int64
			_, err := fmt.Sscan(v, &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("no %s in %s", key, file)
}

func (r *report) caseStart(string) { r.caseT, r.caseLoad = time.Now(), loadAvg() }

func (r *report) caseEnd(c string) {
	r.Cases = append(r.Cases, fmt.Sprintf("%s: %s (load average %s at the start, %s at the end)",
		c, time.Since(r.caseT).Round(time.Second), r.caseLoad, loadAvg()))
}

func walls(rs []run) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, x := range rs {
		out[i] = x.Wall
	}
	return out
}

func cpus(rs []run) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, x := range rs {
		out[i] = x.CPU
	}
	return out
}

func maxRSS(rs []run) int64 {
	var m int64
	for _, x := range rs {
		m = max(m, x.MaxRSS)
	}
	return m
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// render formats the report as Markdown.
func (r *report) render(o options) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## Results\n\n")
	targets := map[string]float64{"restore": 0.8, "push": 1.0}
	if len(r.Transfers) > 0 {
		p("| case | files | runs | filesync | rclone | gcloud | filesync/rclone | filesync/gcloud | target (vs rclone) |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, t := range r.Transfers {
			fs, rc, gc := median(walls(t.Runs["filesync"])), median(walls(t.Runs["rclone"])), median(walls(t.Runs["gcloud"]))
			target := "-"
			if lim, ok := targets[t.Op]; ok && t.Files == 2000 && rc > 0 {
				got := float64(fs) / float64(rc)
				target = fmt.Sprintf("<= %.1fx: %s", lim, verdict(got <= lim))
				if got > lim {
					target += fmt.Sprintf(" (by %.0f%%)", 100*(got/lim-1))
				}
			}
			op := t.Op
			if t.FSBackend {
				op += " (fs backend)"
			}
			p("| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", op, t.Files, len(t.Runs["filesync"]),
				secs(fs), secs(rc), secs(gc), ratio(fs, rc), ratio(fs, gc), target)
		}
		p("\nWall time, median of the runs. CPU (user+sys, median) and peak RSS (largest of the runs):\n\n")
		p("| case | files | filesync CPU | rclone CPU | gcloud CPU | filesync RSS | rclone RSS | gcloud RSS |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, t := range r.Transfers {
			p("| %s | %d | %s | %s | %s | %s | %s | %s |\n", t.Op, t.Files,
				secs(median(cpus(t.Runs["filesync"]))), secs(median(cpus(t.Runs["rclone"]))), secs(median(cpus(t.Runs["gcloud"]))),
				mib(maxRSS(t.Runs["filesync"])), mib(maxRSS(t.Runs["rclone"])), mib(maxRSS(t.Runs["gcloud"])))
		}
		p("\nPer run (wall seconds, in run order):\n\n")
		for _, t := range r.Transfers {
			for _, tool := range []string{"filesync", "rclone", "gcloud"} {
				if len(t.Runs[tool]) == 0 {
					continue
				}
				var ws []string
				for _, w := range walls(t.Runs[tool]) {
					ws = append(ws, fmt.Sprintf("%.2f", w.Seconds()))
				}
				p("- %s %d files, %s: %s\n", t.Op, t.Files, tool, strings.Join(ws, ", "))
			}
		}
		p("\n")
	}
	if l := r.Live; l != nil {
		p("### Two live replicas (%d files in the bucket, `--poll-interval %s`)\n\n", l.Files, l.PollInterval)
		if len(l.Total) > 0 {
			p("| metric | p50 | p90 | p99 | max | target |\n|---|---:|---:|---:|---:|---|\n")
			p50, p99 := percentile(l.Total, 50), percentile(l.Total, 99)
			p("| propagation A->B (%d writes of %d KiB) | %s | %s | %s | %s | p50 <= 1 s: %s; p99 <= 2 s: %s |\n",
				len(l.Total), l.FileKiB, secs(p50), secs(percentile(l.Total, 90)), secs(p99), secs(percentile(l.Total, 100)),
				verdict(p50 <= time.Second), verdict(p99 <= 2*time.Second))
			p("| of which: in the bucket (A's upload) | %s | %s | %s | %s | |\n",
				secs(percentile(l.Uploaded, 50)), secs(percentile(l.Uploaded, 90)), secs(percentile(l.Uploaded, 99)),
				secs(percentile(l.Uploaded, 100)))
			var down []time.Duration
			for i := range l.Total {
				down = append(down, l.Total[i]-l.Uploaded[i])
			}
			p("| of which: bucket -> B complete | %s | %s | %s | %s | |\n\n",
				secs(percentile(down, 50)), secs(percentile(down, 90)), secs(percentile(down, 99)), secs(percentile(down, 100)))
		}
		if len(l.IdleCPU) == 2 {
			p("Idle over %s (both replicas in sync, nothing changing): replica A %.2f%%, replica B %.2f%% of one core "+
				"(target < 2%%: %s); fake-gcs-server answering their polls %.2f%%. Peak RSS (VmHWM) A %s, B %s.\n\n",
				l.IdleWindow, l.IdleCPU[0], l.IdleCPU[1], verdict(l.IdleCPU[0] < 2 && l.IdleCPU[1] < 2), l.IdleServerCPU,
				mib(l.HWM[0]), mib(l.HWM[1]))
		}
	}
	if s := r.RSS; s != nil && s.HWM > 0 {
		p("### 100,000 known files\n\n")
		p("The same %d tiny files in the bucket (fake-gcs-server, filesystem backend) and in the directory, no state; "+
			"writing both took %s, one listing of the bucket by the harness %s. filesync found the same content on both sides, "+
			"was ready after %s (filesync_known_files %d); peak RSS (VmHWM) %s when ready, %s after %s more of polling "+
			"(VmRSS %s, CPU %.1f%% of one core meanwhile). Target <= 100 MB: %s.\n\n",
			s.Files, s.Seed.Round(time.Second), s.List.Round(100*time.Millisecond), s.Ready.Round(time.Second), s.Known,
			mib(s.HWMReady), mib(s.HWM), s.Steady.Round(time.Second), mib(s.RSS), s.SteadyCPU, verdict(s.HWM*1024 <= 100*1000*1000))
	}
	if len(r.Failures) > 0 {
		p("### Failures\n\n")
		for _, f := range r.Failures {
			p("- %s\n", f)
		}
		p("\n")
	}
	p("## Conditions\n\n")
	p("- started %s; %d CPUs (%s); %s RAM; load average at the start %s\n", r.Started.Format(time.RFC3339),
		r.NProc, r.CPUModel, r.MemTotal, r.LoadStart)
	p("- options: runs=%d runs-20k=%d samples=%d idle=%s cases=%s peers=%s peers-20k=%s\n", o.runs, o.runs20k, o.samples, o.idle,
		strings.Join(o.cases, ","), strings.Join(o.peers, ","), strings.Join(o.peers20k, ","))
	for _, v := range r.Versions {
		p("- %s\n", v)
	}
	for _, d := range r.Datasets {
		p("- dataset %s\n", d)
	}
	for _, c := range r.Cases {
		p("- case %s\n", c)
	}
	p("\nBusiest processes at the start (`ps -eo pcpu,rss,comm --sort=-pcpu`, %%CPU averaged over their lifetime):\n\n```\n%s\n```\n\n", r.TopStart)
	p("## Commands\n\n$WORK is the scratch directory (%s in this run).\n\n```\n", o.work)
	seen := map[string]bool{}
	for _, t := range r.Transfers {
		for _, tool := range []string{"filesync", "rclone", "gcloud"} {
			if c := t.Commands[tool]; c != "" {
				key := t.Op + " " + tool
				if !seen[key] {
					seen[key] = true
					p("# %s, %s\n%s\n", t.Op, tool, c)
				}
			}
		}
	}
	if r.Live != nil {
		for _, c := range r.Live.Commands {
			p("# live replica\n%s\n", c)
		}
	}
	if r.RSS != nil && r.RSS.Command != "" {
		p("# 100,000 files\n%s\n", r.RSS.Command)
	}
	p("```\n")
	out := b.String()
	if o.work != "" {
		out = strings.ReplaceAll(out, o.work+"/", "$WORK/")
	}
	return out
}

func mib(kib int64) string {
	if kib <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(kib)/1024)
}

// moduleVersion returns the main module version a Go binary was built from (`go version -m`).
func moduleVersion(ctx context.Context, path string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", path).Output()
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
			return f[1] + " " + f[2]
		}
	}
	return "unknown"
}
