package tools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Clients are rclone and gcloud, configured for one server.
type Clients struct {
	Rclone       string // the rclone binary
	Gcloud       string // the gcloud binary; "" when it is not installed
	RcloneConfig string // a config file with the remote "gcs" (anonymous, the server's endpoint)
	GcloudConfig string // a CLOUDSDK_CONFIG directory (no credentials, the storage endpoint overridden)
}

// RcloneRemote is the name of the remote in RcloneConfig: gcs:BUCKET/PREFIX.
const RcloneRemote = "gcs"

// Configure writes the private configurations of rclone and (if gcloud is not "") gcloud into work,
// making it if missing, for the server at host (HOST:PORT, plain HTTP).
func Configure(ctx context.Context, work, host, rclone, gcloud string) (*Clients, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", work, err)
	}
	c := &Clients{Rclone: rclone, Gcloud: gcloud,
		RcloneConfig: filepath.Join(work, "rclone.conf"), GcloudConfig: filepath.Join(work, "gcloud")}
	conf := fmt.Sprintf("[%s]\ntype = google cloud storage\nanonymous = true\nendpoint = http://%s/storage/v1/\nbucket_policy_only = true\n",
		RcloneRemote, host)
	if err := os.WriteFile(c.RcloneConfig, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("writing the rclone config: %w", err)
	}
	if gcloud == "" {
		return c, nil
	}
	if err := os.MkdirAll(c.GcloudConfig, 0o700); err != nil {
		return nil, fmt.Errorf("creating the gcloud config dir: %w", err)
	}
	for _, kv := range [][2]string{
		{"auth/disable_credentials", "true"},
		{"core/project", "test-project"},
		{"core/disable_usage_reporting", "true"},
		{"component_manager/disable_update_check", "true"},
		{"api_endpoint_overrides/storage", "http://" + host + "/storage/v1/"},
	} {
		cmd := exec.CommandContext(ctx, gcloud, "config", "set", kv[0], kv[1], "--quiet")
		cmd.Env = c.GcloudEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("gcloud config set %s: %w: %s", kv[0], err, out)
		}
	}
	return c, nil
}

// GcloudEnv is the environment gcloud runs in: its private configuration, no prompts.
func (c *Clients) GcloudEnv() []string {
	return append(os.Environ(), "CLOUDSDK_CONFIG="+c.GcloudConfig, "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
}

// RcloneEnv is the environment rclone runs in: without RCLONE_ variables (see WithoutPrefix).
func (c *Clients) RcloneEnv() []string { return WithoutPrefix(os.Environ(), "RCLONE_") }

// RcloneCommand is `rclone --config RcloneConfig ARGS...` in RcloneEnv.
func (c *Clients) RcloneCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Rclone, append([]string{"--config", c.RcloneConfig}, args...)...)
	cmd.Env = c.RcloneEnv()
	return cmd
}

// GcloudCommand is `gcloud ARGS...` in GcloudEnv.
func (c *Clients) GcloudCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Gcloud, args...)
	cmd.Env = c.GcloudEnv()
	return cmd
}

// WithoutPrefix drops the variables whose name starts with prefix. rclone reads every RCLONE_<FLAG> as
// that flag, and the Makefile exports the pins of hack/versions.env, among them RCLONE_VERSION (which
// rclone would take for --version and refuse).
func WithoutPrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
