package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/filesync/filesync/e2e/internal/tools"
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
	// The restore of the same objects into an empty directory (filesync --once).
	Restore, RestoreLimited run // the second with GOMEMLIMIT=restoreMemLimit
	RestoreCommand          string
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
	Ready     []readyRow
	Cache     *cacheResult
	Latency   []*latencyResult
	Scale     *scaleResult
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
		"filesync: "+filesyncBin+" ("+binaryID(filesyncBin)+"); the bench's tree: "+
			toolVersion(ctx, "git", "-C", filepath.Dir(bin), "describe", "--tags", "--always", "--dirty")+
			" (bin/filesync is `make build` of it unless -filesync says otherwise)",
		"fake-gcs-server: "+moduleVersion(ctx, filepath.Join(bin, "fake-gcs-server"))+" (plain http; the memory backend for datasets under 10,000 objects, the filesystem backend for larger ones and for the ready and cache cases; scale as -scale-backend says)",
		"go: "+runtime.Version())
	peers := slices.Clone(o.peers)
	if !slices.Contains(peers, "rclone") && (slices.Contains(o.cases, "latency") || slices.Contains(o.cases, "latency20k")) {
		peers = append(peers, "rclone")
	}
	for _, p := range peers {
		switch p {
		case "rclone":
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "rclone"), "version")
			cmd.Env = tools.WithoutPrefix(os.Environ(), "RCLONE_")
			v := "unknown"
			if out, err := cmd.Output(); err == nil {
				v, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
			}
			r.Versions = append(r.Versions, "rclone: "+v)
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

// durations picks one duration of every run.
func durations[R any](rs []R, of func(R) time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, x := range rs {
		out[i] = of(x)
	}
	return out
}

func walls(rs []run) []time.Duration {
	return durations(rs, func(x run) time.Duration { return x.Wall })
}
func cpus(rs []run) []time.Duration { return durations(rs, func(x run) time.Duration { return x.CPU }) }
func latencyWalls(rs []latencyRun) []time.Duration {
	return durations(rs, func(x latencyRun) time.Duration { return x.Wall })
}
func latencyRequests(rs []latencyRun) []time.Duration {
	return durations(rs, func(x latencyRun) time.Duration { return time.Duration(x.Requests) })
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
	for _, l := range r.Latency {
		renderLatency(&b, l)
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
	if s := r.RSS; s != nil && s.Restore.Wall > 0 {
		p("### Restore of 100,000 objects\n\n")
		p("The %d tiny objects restored into an empty directory by `%s`: %s wall, %s CPU, peak RSS %s (GNU time %%M). "+
			"Target <= 100 MB (issue 13): %s. With GOMEMLIMIT=%s: %s wall, %s CPU, peak RSS %s: %s.\n\n", s.Files, s.RestoreCommand,
			s.Restore.Wall.Round(100*time.Millisecond), s.Restore.CPU.Round(100*time.Millisecond), mib(s.Restore.MaxRSS),
			verdict(s.Restore.MaxRSS*1024 <= 100*1000*1000), restoreMemLimit, s.RestoreLimited.Wall.Round(100*time.Millisecond),
			s.RestoreLimited.CPU.Round(100*time.Millisecond), mib(s.RestoreLimited.MaxRSS), verdict(s.RestoreLimited.MaxRSS*1024 <= 100*1000*1000))
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
	if r.Scale != nil {
		renderScale(&b, r.Scale)
	}
	if len(r.Ready) > 0 {
		renderReady(p, r.Ready)
	}
	if r.Cache != nil {
		renderCache(p, r.Cache)
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
	p("- options: runs=%d runs-20k=%d samples=%d idle=%s cases=%s peers=%s peers-20k=%s delays=%s latency-runs=%d latency-runs-20k=%d scale-sizes=%s scale-backend=%s scale-changes=%d\n",
		o.runs, o.runs20k, o.samples, o.idle, strings.Join(o.cases, ","), strings.Join(o.peers, ","), strings.Join(o.peers20k, ","),
		joinDurations(o.delays), o.latencyRuns, o.latencyRuns20k, joinInts(o.scaleSizes), o.scaleBackend, o.scaleChanges)
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
	for _, l := range r.Latency {
		p("# latency mode, %s: the server (behind the proxy)\n%s\n", l.Dataset, l.Server)
		for _, op := range []string{"restore", "push"} {
			for _, tool := range l.Tools {
				if c := l.Commands[op+" "+tool]; c != "" {
					p("# latency mode, %s, %s, %s\n%s\n", l.Dataset, op, tool, c)
				}
			}
		}
	}
	if s := r.Scale; s != nil {
		for _, c := range s.Commands {
			p("# scale\n%s\n", c)
		}
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

// binaryID names a binary by the first 12 hex digits of its SHA-256 and its modification time (a
// -trimpath build records no -ldflags, so the version it was stamped with cannot be read back).
func binaryID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	st, err := f.Stat()
	if err != nil {
		return "unreadable"
	}
	return fmt.Sprintf("sha256 %x, built %s", h.Sum(nil)[:6], st.ModTime().UTC().Format(time.RFC3339))
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

func joinDurations(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, ",")
}

func joinInts(ns []int) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = fmt.Sprint(n)
	}
	return strings.Join(out, ",")
}

// toolLabel names a tool with the flags that matter for the comparison.
func toolLabel(tool string) string {
	switch tool {
	case "filesync":
		return "filesync"
	case rcloneDefaults:
		return "rclone defaults"
	case rcloneT8C16:
		return "rclone t8/c16"
	}
	return tool
}

// latencyTargets are issue 13's restore targets against the peers (filesync / peer at most).
var latencyTargets = map[string]float64{rcloneDefaults: 0.3, rcloneT8C16: 0.5}

// renderLatency writes one dataset's latency tables.
func renderLatency(b *strings.Builder, l *latencyResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	backend := "memory backend"
	if l.FSBackend {
		backend = "filesystem backend"
	}
	p("### Latency mode: %s, %d files, %.1f MiB (fake-gcs-server %s, behind the latency proxy), %d run(s) per tool and delay\n\n",
		l.Dataset, l.Files, float64(l.Bytes)/mb, backend, l.Runs)
	p("Every request waits the delay in the proxy before it is forwarded; bytes then flow at loopback speed. Peers: "+
		"filesync `--once --restore-transfers %d` (a pass before ready runs every transfer, uploads too, that many at a time); rclone defaults = no flags "+
		"(`--transfers 4 --checkers 8`, lists directory by directory); rclone t8/c16 = `--transfers 8 --checkers 16`. "+
		"Loopback throughput, same run (the harness moving the %d largest files, %.1f MiB, 8 at a time, straight to the server, "+
		"before and after the runs; the better of the two): download %.1f MiB/s (%.1f, %.1f), upload %.1f MiB/s (%.1f, %.1f). "+
		"Floor = files x delay / filesync's concurrency + bytes / loopback throughput.\n\n",
		latencyTransfers, l.ThroughputFiles, float64(l.ThroughputBytes)/mb,
		l.loopbackThroughput("restore")/mb, l.DownBefore/mb, l.DownAfter/mb, l.loopbackThroughput("push")/mb, l.UpBefore/mb, l.UpAfter/mb)
	p("| op | delay | filesync | rclone defaults | rclone t8/c16 | floor | filesync / floor | filesync / rclone defaults | filesync / rclone t8/c16 | requests (filesync / defaults / t8c16) | target (issue 13, restore) |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, op := range []string{"restore", "push"} {
		if !l.has(op) {
			continue
		}
		for _, d := range l.Delays {
			med := map[string]time.Duration{}
			var reqs []string
			for _, tool := range l.Tools {
				rs := l.Results[latencyKey{op, d, tool}]
				med[tool] = median(latencyWalls(rs))
				reqs = append(reqs, fmt.Sprint(int64(median(latencyRequests(rs)))))
			}
			fs := med["filesync"]
			floor := l.floor(op, d)
			target := "-"
			if op == "restore" && d > 0 {
				var parts []string
				for _, tool := range []string{rcloneDefaults, rcloneT8C16} {
					if lim, ok := latencyTargets[tool]; ok && fs > 0 && med[tool] > 0 {
						got := float64(fs) / float64(med[tool])
						parts = append(parts, fmt.Sprintf("<= %.1fx %s: %s", lim, toolLabel(tool), verdictBy(got, lim)))
					}
				}
				if l.Files >= bigDataset && floor > 0 && fs > 0 {
					parts = append(parts, "<= 2x floor: "+verdictBy(float64(fs)/float64(floor), 2))
				}
				target = strings.Join(parts, "; ")
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", op, d, secs(fs), secs(med[rcloneDefaults]),
				secs(med[rcloneT8C16]), secs(floor), ratio(fs, floor), ratio(fs, med[rcloneDefaults]), ratio(fs, med[rcloneT8C16]),
				strings.Join(reqs, " / "), target)
		}
	}
	p("\nMedians. CPU (user+sys, median) per tool, and every run's wall seconds in run order:\n\n")
	for _, op := range []string{"restore", "push"} {
		if !l.has(op) {
			continue
		}
		for _, d := range l.Delays {
			var parts []string
			for _, tool := range l.Tools {
				rs := l.Results[latencyKey{op, d, tool}]
				var ws []string
				for _, w := range latencyWalls(rs) {
					ws = append(ws, fmt.Sprintf("%.2f", w.Seconds()))
				}
				cs := make([]run, len(rs))
				for i := range rs {
					cs[i] = rs[i].run
				}
				parts = append(parts, fmt.Sprintf("%s %s (CPU %s)", toolLabel(tool), strings.Join(ws, ", "), secs(median(cpus(cs)))))
			}
			p("- %s at %s: %s\n", op, d, strings.Join(parts, "; "))
		}
	}
	p("\n")
	renderCurve(b, l)
}

// renderCurve tabulates filesync's restore by --restore-transfers: median wall per delay, and the floor at
// that concurrency.
func renderCurve(b *strings.Builder, l *latencyResult) {
	if len(l.Curve) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	var ns []int
	var delays []time.Duration
	for k := range l.Curve {
		if !slices.Contains(ns, k.Transfers) {
			ns = append(ns, k.Transfers)
		}
		if !slices.Contains(delays, k.Delay) {
			delays = append(delays, k.Delay)
		}
	}
	slices.Sort(ns)
	slices.Sort(delays)
	p("filesync's restore by `--restore-transfers` (median wall of %d run(s) each, rotating order; floor at that concurrency in brackets):\n\n", l.Runs)
	p("| --restore-transfers |")
	for _, d := range delays {
		p(" %s |", d)
	}
	p("\n|---:|")
	for range delays {
		p("---:|")
	}
	p("\n")
	for _, n := range ns {
		p("| %d |", n)
		for _, d := range delays {
			rs := l.Curve[curveKey{d, n}]
			if len(rs) == 0 {
				p(" – |")
				continue
			}
			floor := latencyFloor(l.Files, d, n, l.Bytes, l.loopbackThroughput("restore"))
			p(" %s (%s) |", secs(median(latencyWalls(rs))), secs(floor))
		}
		p("\n")
	}
	p("\n")
}

// verdictBy says met or by how much a ratio misses its limit.
func verdictBy(got, limit float64) string {
	if got <= limit {
		return fmt.Sprintf("met (%.2fx)", got)
	}
	return fmt.Sprintf("**missed** (%.2fx, by %.0f%%)", got, 100*(got/limit-1))
}

// reqs formats requests by op as list/get/read/insert/delete.
func reqs(m map[string]float64) string {
	out := make([]string, len(scaleOps))
	for i, op := range scaleOps {
		out[i] = strconv.FormatFloat(m[op], 'f', -1, 64)
	}
	return strings.Join(out, "/")
}

func perMinute(c cost, window time.Duration) map[string]float64 {
	out := map[string]float64{}
	if window <= 0 {
		return out
	}
	for _, op := range scaleOps {
		out[op] = math.Round(10*c.Requests[op]*float64(time.Minute)/float64(window)) / 10
	}
	return out
}

func kib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/1024) }

// renderScale writes the scale case's three tables, one row per size each, so runs before and after a
// change to the engine line up.
func renderScale(b *strings.Builder, s *scaleResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Scale: two live replicas over N files in sync on both sides (issue 10)\n\n")
	p("fake-gcs-server %s backend; replicas `--state-dir` each, otherwise the sidecar's defaults (`--poll-interval %s`, "+
		"`--settle 500ms`); both start with the same N files in their directories and the bucket, and no state. "+
		"Per size: idle over the idle window first, then %d single-file writes on A (a new %d-byte file renamed into an existing "+
		"folder), then %d single-object changes in the bucket made by another client (an existing object overwritten with %d new bytes), "+
		"one at a time, each after a random 0-%s pause. A change's window runs from the change until it is complete on the other "+
		"replica (on both, for a bucket change) plus %s; every figure is the median over the changes of the difference between the "+
		"samples at the two ends of the window. "+
		"CPU: utime+stime from /proc/PID/stat, less the polls in the window (its list requests times the idle CPU per listed page, "+
		"the lower of the idle minute before and the one after the changes), raw in parentheses; the idle cost per page varies with "+
		"the machine's load, so at 2,000 files, where a change costs about as much as the window's polls, the net figure is an "+
		"estimate of +-50 ms and can come out negative. Requests: filesync_gcs_requests_total by op, list/get/read/insert/delete, raw: every list request "+
		"here is a poll's page (one page per 1,000 objects; a pass after a change lists nothing). Written: write_bytes from /proc/PID/io, counted per 4 KiB page dirtied; the "+
		"replicas' logs go through a pipe and are not counted; a replica that downloads the change writes its %d bytes too.\n\n",
		s.Backend, scalePoll, s.Changes, scaleChangeSize, s.Changes, scaleChangeSize, scalePoll, scaleTail, scaleChangeSize)
	p("**Idle** (nothing changing):\n\n")
	p("| files | MiB | seed | ready A / B | one list page | idle CPU A / B | requests/min A | requests/min B | passes/min A / B | written KiB/min A / B | fake-gcs-server CPU | CPU ms per listed page A / B (before; after the changes) | VmHWM A / B |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, z := range s.Sizes {
		pct := func(i int) string {
			if z.IdleWindow <= 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.2f %%", 100*float64(z.Idle[i].CPU)/float64(z.IdleWindow))
		}
		pm := func(i int, v float64) string {
			if z.IdleWindow <= 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", v*float64(time.Minute)/float64(z.IdleWindow))
		}
		perPage := func(c cost) string {
			if c.Requests["list"] <= 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", float64(c.CPU.Microseconds())/1000/c.Requests["list"])
		}
		p("| %d | %.1f | %s | %s / %s | %s | %s / %s | %s | %s | %s / %s | %s / %s | %.2f %% | %s / %s; %s / %s | %s / %s |\n",
			z.Files, float64(z.Bytes)/mb, z.Seed.Round(100*time.Millisecond), z.Ready[0].Round(100*time.Millisecond),
			z.Ready[1].Round(100*time.Millisecond), z.ListOnePage.Round(time.Millisecond), pct(0), pct(1),
			reqs(perMinute(z.Idle[0], z.IdleWindow)), reqs(perMinute(z.Idle[1], z.IdleWindow)),
			pm(0, z.Idle[0].Passes), pm(1, z.Idle[1].Passes),
			pm(0, float64(z.Idle[0].Written)/1024), pm(1, float64(z.Idle[1].Written)/1024),
			z.IdleServer, perPage(z.Idle[0]), perPage(z.Idle[1]), perPage(z.IdleAfter[0]), perPage(z.IdleAfter[1]),
			mib(z.HWM[0]), mib(z.HWM[1]))
	}
	for _, kind := range []struct {
		title  string
		remote bool
	}{{"**A single-file write on replica A** (propagation: until complete on B)", false},
		{"**A single-object change in the bucket** by another client (propagation: until complete on both A and B)", true}} {
		p("\n%s:\n\n", kind.title)
		p("| files | propagation p50 (max) | in the bucket p50 | window p50 | A CPU ms | A requests | A written KiB | B CPU ms | B requests | B written KiB |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, z := range s.Sizes {
			chs := z.Local
			if kind.remote {
				chs = z.Remote
			}
			a, bb := statsOf(chs, z, 0), statsOf(chs, z, 1)
			up := secs(a.Uploaded)
			if kind.remote {
				up = "-"
			}
			cell := func(st changeStats) (string, string, string) {
				return fmt.Sprintf("%.0f (%.0f)", st.CPUNet.Seconds()*1000, st.CPURaw.Seconds()*1000),
					reqs(st.Requests), kib(st.Written)
			}
			ac, ar, aw := cell(a)
			bc, br, bw := cell(bb)
			p("| %d | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n", z.Files, secs(a.Propagation), secs(a.PropagationMax),
				up, secs(a.Window), ac, ar, aw, bc, br, bw)
		}
	}
	p("\n")
}

// renderReady renders the ready case: a row per site size and mode, and the targets of issue 23.
func renderReady(p func(string, ...any), rows []readyRow) {
	p("### Ready at any site size (`--lazy`)\n\n")
	p("A fresh pod (empty directory, no state) over %d code files and the media objects below (fake-gcs-server, "+
		"filesystem backend); eager: every object downloaded before ready, `--lazy uploads/`: media recorded "+
		"remote-only and filled in behind.\n\n", readyCode)
	p("| media objects | mode | ready | files at ready | bytes at ready | peak RSS at ready | read-through, not local (median) | read-through, local (median) | knows every path after ready | peak RSS then | RSS then | CPU until then | peak RSS %s later |\n", readySettle)
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var lazy0, list0 time.Duration
	for _, r := range rows {
		mode, lr, rr, ka, kh, kr, kc, ks := "eager", "", "", "", "", "", "", ""
		if r.Lazy {
			mode = "lazy"
			if r.MemLimit != "" {
				mode += ", GOMEMLIMIT=" + r.MemLimit
			}
			if r.Media == 0 && r.MemLimit == "" {
				lazy0, list0 = r.Ready, r.ListWait
			}
			if r.RemoteRead > 0 {
				lr, rr = r.LocalRead.Round(10*time.Microsecond).String(), r.RemoteRead.Round(10*time.Microsecond).String()
			}
			if r.KnownHWM > 0 {
				ka, kh, kr = r.KnownAfter.Round(100*time.Millisecond).String(), mib(r.KnownHWM), mib(r.KnownRSS)
				kc, ks = r.KnownCPU.Round(10*time.Millisecond).String(), mib(r.SettledHWM)
			}
		}
		p("| %d | %s | %s | %d | %.1f MB | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Media, mode, r.Ready.Round(10*time.Millisecond), r.Files,
			float64(r.Disk)/1e6, mib(r.HWM), rr, lr, ka, kh, kr, kc, ks)
	}
	for _, r := range rows {
		if r.Lazy && r.Media == 100000 && lazy0 > 0 && r.MemLimit == "" {
			p("\nWith `--lazy`, ready at 100,000 media objects took %.2fx the time at 0 (target <= 1.5x: %s); peak RSS at "+
				"ready %s; once it knew all %d paths (the media listed and recorded remote-only after ready, a %s cache) "+
				"peak RSS %s, and %s once it had polled the bucket on for %s (target <= 64 MiB: %s).\n",
				r.Ready.Seconds()/lazy0.Seconds(), verdict(r.Ready.Seconds() <= 1.5*lazy0.Seconds()), mib(r.HWM),
				readyCode+r.Media, readyCache, mib(r.KnownHWM), mib(r.SettledHWM), readySettle, verdict(r.SettledHWM <= 64<<10))
			if r.ListWait > 0 && list0 > 0 {
				p("Of that, the listing the restore waits on (the top level, then every folder but uploads/ whole), timed "+
					"apart against the same emulator (median of %d): %s at 0 media, %s at 100,000; ready less it: %s and %s (%.2fx).\n",
					readyListRuns, list0.Round(10*time.Millisecond), r.ListWait.Round(10*time.Millisecond),
					(lazy0 - list0).Round(10*time.Millisecond), (r.Ready - r.ListWait).Round(10*time.Millisecond),
					(r.Ready-r.ListWait).Seconds()/(lazy0-list0).Seconds())
			}
		}
		if r.Lazy && r.Media == 100000 && r.MemLimit != "" {
			p("With `GOMEMLIMIT=%s` (a 64 MiB container's setting: the binary's own pages are some 19 MiB of the RSS "+
				"and not the Go runtime's), peak RSS once it knew every path %s, %s later %s (<= 64 MiB: %s), CPU until it knew them %s.\n",
				r.MemLimit, mib(r.KnownHWM), readySettle, mib(r.SettledHWM), verdict(r.SettledHWM <= 64<<10), r.KnownCPU.Round(10*time.Millisecond))
		}
	}
	p("\n")
}

// renderCache renders the cache case: per phase, the median and largest disk samples against the budget
// plus the transfers in flight; what the fill did at the budget; how the media read back.
func renderCache(p func(string, ...any), c *cacheResult) {
	p("### Lazy media within `--cache-size` (issue 23)\n\n")
	p("One replica over %d code files and %d media objects of %d KiB (%.0f MiB, %.0fx the budget; fake-gcs-server, "+
		"filesystem backend), from an empty directory: `%s`. Disk use is the regular files under uploads/ plus filesync's "+
		"temp files (.filesync/tmp, .filesync/stage), sampled every %s (%d samples): over the fill (from the start until "+
		"filesync_lazy_cache_bytes leaves no room for one more object), %s at the budget with nothing read, then a read-back "+
		"of every media file through the read-through, one at a time, compared byte for byte (and %s more). "+
		"In flight: `--transfers %d` x the object size.\n\n",
		cacheCode, c.Media, c.Object>>10, float64(int64(c.Media)*c.Object)/mb, float64(int64(c.Media)*c.Object)/float64(c.Budget),
		c.Command, cacheSampleEvery, c.Samples, cacheIdle, cacheAfter, cacheTransfers)
	bound := c.Budget + c.InFlight
	p("| phase | time | disk median | disk max (media + temp) | budget + in flight | within |\n|---|---:|---:|---:|---:|---|\n")
	for ph := range phases {
		p("| %s | %s | %.1f MiB | %.1f MiB (%.1f + %.1f) | %.0f + %.0f MiB | %s |\n", phaseNames[ph], secs(c.Took[ph]),
			float64(c.Median[ph])/mb, float64(c.Max[ph].total())/mb, float64(c.Max[ph].Media)/mb, float64(c.Max[ph].Temp)/mb,
			float64(c.Budget)/mb, float64(c.InFlight)/mb, verdict(c.Max[ph].total() <= bound))
	}
	p("\nReady %s after the start; the first remote-only count above 0, %.0f, %s after ready; the fill reached the budget "+
		"%s after ready, %d media files local, %.0f evictions by then. At the budget, idle for %s: %.0f downloads, %.0f evictions "+
		"(none expected: the fill has no room). "+
		"Read back: %d of %d files, %d identical, %d mismatches, %d failures (%d from the local file, %d fetched from the "+
		"bucket); per file %s median, %s max. %.0f evictions in all (filesync_lazy_evictions_total); after it %d media "+
		"files, %.1f MiB on disk (filesync_lazy_cache_bytes %.1f MiB); the largest temp sample %.1f MiB. The case took %s.\n",
		c.Ready.Round(10*time.Millisecond), c.FirstRemote, secs(c.FirstRemoteAt), secs(c.Fill), c.FillFiles, c.FillEvictions, cacheIdle,
		c.IdleDownloads, c.IdleEvictions, c.Read, c.Media, c.Read-c.Mismatches-c.Failures, c.Mismatches, c.Failures,
		c.FromLocal, c.FromBucket, c.ReadP50.Round(100*time.Microsecond), c.ReadMax.Round(100*time.Microsecond), c.Evictions,
		c.FinalFiles, float64(c.FinalMedia)/mb, c.FinalCache/mb, float64(c.MaxTemp)/mb, c.Total.Round(time.Second))
	for _, e := range c.Errors {
		p("- %s\n", e)
	}
	p("\n")
}
