package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
)

// Batch is the JSON body POSTed to every --on-change URL (docs/design.md, "Change hooks").
type Batch struct {
	Replica string      `json:"replica"`
	Bucket  string      `json:"bucket"`
	Prefix  string      `json:"prefix"`
	Events  []BodyEvent `json:"events"`
}

// BodyEvent is one event of a Batch.
type BodyEvent struct {
	Path       string    `json:"path"`
	Object     string    `json:"object"` // the object's name in the bucket: PREFIX/path
	Op         Op        `json:"op"`
	Generation int64     `json:"generation"`
	Time       time.Time `json:"time"` // RFC 3339 with nanoseconds, UTC
}

// body renders a batch.
func (s *Sender) body(events []Event) ([]byte, error) {
	b := Batch{Replica: s.opt.Replica, Bucket: s.opt.Bucket, Prefix: s.opt.Prefix, Events: make([]BodyEvent, len(events))}
	for i, e := range events {
		object := e.Path
		if s.opt.Prefix != "" {
			object = s.opt.Prefix + "/" + e.Path
		}
		b.Events[i] = BodyEvent{Path: e.Path, Object: object, Op: e.Op, Generation: e.Generation, Time: e.Time.UTC()}
	}
	return json.Marshal(b)
}

// deliver sends one batch until the receiver takes it (2xx) or refuses it (3xx, 4xx but 408 and 429:
// dropped, counted and logged), retrying everything else with backoff. It returns false only when ctx is
// done first.
func (t *target) deliver(ctx context.Context, batch []Event) bool {
	s, m, log := t.s, t.s.opt.Metrics, t.s.opt.Log
	body, err := s.body(batch)
	if err != nil { // cannot happen for these types; never retried
		m.HookDropped.WithLabelValues(DropRejected).Add(float64(len(batch)))
		log.Error("change hook batch cannot be encoded; dropped", "url", t.name, "events", len(batch), "err", err)
		return true
	}
	for attempt := 1; ; attempt++ {
		status, err := t.post(ctx, body)
		switch {
		case err == nil && status/100 == 2:
			m.HookRequests.WithLabelValues(ResultOK).Inc()
			m.HookDelivered.Add(float64(len(batch)))
			if attempt > 1 {
				log.Info("change hook receiver took the batch", "url", t.name, "events", len(batch), "attempts", attempt)
			}
			return true
		case ctx.Err() != nil:
			return false
		case err == nil && !retried(status):
			m.HookRequests.WithLabelValues(ResultRejected).Inc()
			m.HookDropped.WithLabelValues(DropRejected).Add(float64(len(batch)))
			log.Error("change hook receiver refused the batch; dropped", "url", t.name, "status", status,
				"events", len(batch), "first", batch[0].Path)
			return true
		}
		m.HookRequests.WithLabelValues(ResultError).Inc()
		if err == nil {
			err = fmt.Errorf("HTTP %d", status)
		}
		wait := s.opt.Retry.Delay(attempt)
		if attempt == 1 {
			log.Warn("change hook receiver failed; retrying", "url", t.name, "events", len(batch), "err", err,
				"retry_in", wait.Round(time.Millisecond))
		} else {
			log.Debug("change hook receiver failed again", "url", t.name, "attempt", attempt, "err", err,
				"retry_in", wait.Round(time.Millisecond))
		}
		if !backoff.Sleep(ctx, wait) {
			return false
		}
	}
}

// retried says whether a non-2xx status is worth another attempt: the receiver is overloaded, timed out or
// failing, as opposed to refusing this request.
func retried(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// post sends body once and returns the status.
func (t *target) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url.String(), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "filesync-hooks")
	resp, err := t.s.opt.Client.Do(req)
	if err != nil {
		return 0, scrub(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// scrub drops the URL from a client error (it may carry a token in its query or user info); the log line
// names the URL without them.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
