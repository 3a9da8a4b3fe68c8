package main

import (
	"strings"
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		in      []time.Duration
		wantMed time.Duration
		wantP50 time.Duration
		wantP99 time.Duration
		wantP90 time.Duration
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"odd unsorted", ms(5, 1, 3), 3 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{"even", ms(4, 1, 2, 3), 2500 * time.Microsecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond},
		{"ten", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 5500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.wantMed {
				t.Errorf("median = %v, want %v", got, tt.wantMed)
			}
			if got := percentile(tt.in, 50); got != tt.wantP50 {
				t.Errorf("p50 = %v, want %v", got, tt.wantP50)
			}
			if got := percentile(tt.in, 90); got != tt.wantP90 {
				t.Errorf("p90 = %v, want %v", got, tt.wantP90)
			}
			if got := percentile(tt.in, 99); got != tt.wantP99 {
				t.Errorf("p99 = %v, want %v", got, tt.wantP99)
			}
		})
	}
}

func TestBenchLine(t *testing.T) {
	got := benchLine("Restore/tool=filesync/files=2000", 1234567890*time.Nanosecond,
		metric{1.5, "cpu-sec/op"}, metric{61234, "peak-RSS-KiB"})
	want := "BenchmarkRestore/tool=filesync/files=2000 1 1234567890 ns/op 1.5 cpu-sec/op 61234 peak-RSS-KiB"
	if got != want {
		t.Errorf("benchLine = %q, want %q", got, want)
	}
}

func TestDatasetShape(t *testing.T) {
	tests := []struct {
		spec         datasetSpec
		minMB, maxMB int64
		minLarge     int64
	}{
		{spec2k(), 200, 280, 2 * mb},
		{spec20k(), 200, 280, 200 * kb},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name, func(t *testing.T) {
			files, err := tt.spec.generate()
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != tt.spec.Files {
				t.Fatalf("%d files, want %d", len(files), tt.spec.Files)
			}
			if total := totalBytes(files) / mb; total < tt.minMB || total > tt.maxMB {
				t.Errorf("total %d MB, want %d..%d", total, tt.minMB, tt.maxMB)
			}
			large := 0
			for _, f := range files {
				if f.Size >= tt.minLarge {
					large++
				}
			}
			if large != tt.spec.Large {
				t.Errorf("%d large files, want %d", large, tt.spec.Large)
			}
			again, _ := tt.spec.generate()
			for i := range files {
				if files[i] != again[i] {
					t.Fatalf("not deterministic at %d: %v vs %v", i, files[i], again[i])
				}
			}
		})
	}
}

func TestVerifyDir(t *testing.T) {
	files := []file{{"uploads/2020/01/a.jpg", 3}, {"uploads/2021/02/b.png", 5}}
	dir := t.TempDir()
	if err := writeFiles(dir, files, 1); err != nil {
		t.Fatal(err)
	}
	if err := verifyDir(dir, files); err != nil {
		t.Fatalf("complete dir: %v", err)
	}
	if err := verifyDir(dir, append(files, file{"uploads/x.jpg", 1})); err == nil {
		t.Error("a missing file was not reported")
	}
	if err := verifyDir(dir, files[:1]); err == nil {
		t.Error("an unexpected file was not reported")
	}
	if err := verifyDir(dir, []file{{"uploads/2020/01/a.jpg", 4}, files[1]}); err == nil {
		t.Error("a wrong size was not reported")
	}
}

func TestToolOrder(t *testing.T) {
	tests := []struct {
		run   int
		peers []string
		want  string
	}{
		{0, []string{"rclone", "gcloud"}, "filesync,rclone,gcloud"},
		{1, []string{"rclone", "gcloud"}, "rclone,gcloud,filesync"},
		{2, []string{"rclone", "gcloud"}, "gcloud,filesync,rclone"},
		{3, []string{"rclone", "gcloud"}, "filesync,rclone,gcloud"},
		{1, nil, "filesync"},
	}
	for _, tt := range tests {
		if got := strings.Join(toolOrder(tt.run, tt.peers), ","); got != tt.want {
			t.Errorf("toolOrder(%d, %v) = %s, want %s", tt.run, tt.peers, got, tt.want)
		}
	}
}
