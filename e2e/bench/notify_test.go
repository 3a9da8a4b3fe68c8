package main

import (
	"strings"
	"testing"
	"time"
)

// A synthetic run: 3 replicas, 10 writes, 1-minute idle windows. Polling lists 60 pages a minute while
// idle (2 pages × 30 polls), notifications none.
func syntheticNotify() *notifyResult {
	res := &notifyResult{Opt: notifyOptions{Replicas: 3, Rounds: 1, Samples: 10, Idle: time.Minute, FileKiB: 100},
		Commands: map[int][]string{2000: {"fake-gcs-server"}}}
	for _, mode := range []string{"notifications", "polling"} {
		s := &notifySession{Size: 2000, Mode: mode, Round: 1, IdleWin: time.Minute, WriteWin: time.Minute, Writes: 10,
			IdleCPU: []float64{1, 1, 1}}
		for i := range 3 {
			idle, write := counters{}, counters{"filesync_notify_events_received_total": 10}
			if mode == "polling" {
				idle["list"] = 60
				write["list"] = 60 // the idle rate only: no list is caused by a change
			}
			if i == 0 {
				write["insert"] = 10
			} else {
				write["get"], write["read"] = 10, 10
			}
			s.Idle, s.Write = append(s.Idle, idle), append(s.Write, write)
			s.SinceUp = append(s.SinceUp, write)
			s.Total = append(s.Total, time.Duration(i+5)*100*time.Millisecond)
			s.Uploaded = append(s.Uploaded, 500*time.Millisecond)
		}
		res.Sessions = append(res.Sessions, s)
	}
	return res
}

func TestNotifyStats(t *testing.T) {
	res := syntheticNotify()
	m := modeStatsOf(res, 2000, "polling")
	if got := m.idlePerMin("list"); got != 60 {
		t.Fatalf("idle lists per minute = %v, want 60", got)
	}
	raw, net := m.perChange(0, "list")
	if raw != 6 || net != 0 {
		t.Fatalf("A's lists per change = %v raw, %v net; want 6, 0", raw, net)
	}
	if raw, net := m.perChange(1, "read"); raw != 1 || net != 1 {
		t.Fatalf("B's reads per change = %v, %v; want 1, 1", raw, net)
	}
}

func TestRenderCost(t *testing.T) {
	u := defaultUsage()
	u.Sizes = []int{2000, 500000}
	out := renderCost(syntheticNotify(), 2000, defaultPrices(), u)
	// Polling at 2,000: 2 pages × 30 polls/min × 43,200 min = 2,592,000 lists = $12.96; the changes:
	// 30,000 a month × (1/3 insert) Class A = $0.05 and × (4/3 get+read) Class B = $0.016: $13.03.
	if !strings.Contains(out, "| 2000 | 2592000 | $13.03 |") {
		t.Errorf("polling at 2,000 objects:\n%s", out)
	}
	// Notifications at 2,000: 2 pages × 4,320 reconciles = 8,640 lists = $0.0432, changes $0.066, Pub/Sub
	// 30,000 × 1,000 B / 2^40 × $40 = $0.0011: $0.11.
	if !strings.Contains(out, "| 2000 | 2592000 | $13.03 | 8640 | $0.0011 | $0.11 |") {
		t.Errorf("notifications at 2,000 objects:\n%s", out)
	}
	// Polling at 500,000: a poll lists 500 pages at 0.2 s = 100 s, so 0.6 polls/min: 300 lists/min.
	if !strings.Contains(out, "| 500000 | 12960000 | $64.87 |") {
		t.Errorf("polling at 500,000 objects:\n%s", out)
	}
}
