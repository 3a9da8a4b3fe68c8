//go:build e2e

package suite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/filesync/filesync/e2e/internal/cluster"
)

// WordPress drives the WordPress of the example the way a user does: its install form and its REST API,
// authenticated with an application password. Every call goes to one chosen replica.
type WordPress struct {
	k           *Kube
	user        string
	appPassword string
}

// Media is a WordPress attachment as its REST API describes it.
type Media struct {
	ID        int    `json:"id"`
	SourceURL string `json:"source_url"`
	Details   struct {
		File  string `json:"file"` // relative to wp-content/uploads
		Sizes map[string]struct {
			File      string `json:"file"`
			SourceURL string `json:"source_url"`
		} `json:"sizes"`
	} `json:"media_details"`
}

// Files returns the media's files (the original and every generated size) relative to wp-content.
func (m Media) Files() []string {
	dir := path.Dir(m.Details.File)
	files := []string{"uploads/" + m.Details.File}
	for _, s := range m.Details.Sizes {
		if f := "uploads/" + path.Join(dir, s.File); f != files[0] {
			files = append(files, f)
		}
	}
	sort.Strings(files[1:])
	return files
}

// installWordPress submits the install form (step 2) on pod, as a browser on http://localhost:8080 would, so
// that the site URL is the one `make up` prints. An already installed site is left as it is.
func installWordPress(ctx context.Context, k *Kube, pod, user, password string) (bool, error) {
	form := url.Values{
		"weblog_title":    {"filesync e2e"},
		"user_name":       {user},
		"admin_password":  {password},
		"admin_password2": {password},
		"pw_weak":         {"on"},
		"admin_email":     {"admin@example.com"},
		"blog_public":     {"0"},
		"language":        {""},
		"Submit":          {"Install WordPress"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+cluster.PlaceholderHost+"/wp-admin/install.php?step=2",
		strings.NewReader(form.Encode()))
	if err != nil {
		return false, fmt.Errorf("install request: %w", err)
	}
	req.Host = siteHost
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body, err := k.Do(ctx, pod, httpPort, req)
	if err != nil {
		return false, fmt.Errorf("install wordpress: %w", err)
	}
	switch {
	case bytes.Contains(body, []byte("Already Installed")):
		return false, nil
	case status == http.StatusOK && bytes.Contains(body, []byte("Success!")):
		return true, nil
	}
	return false, fmt.Errorf("install wordpress: HTTP %d: %s", status, excerpt(body))
}

var appPasswordRE = regexp.MustCompile(`(?m)^([A-Za-z0-9]{24})\s*$`)

// createAppPassword creates an application password for user with WordPress's own API, run by PHP in the
// WordPress container of pod (what `wp user application-password create` does; the image has no wp-cli).
func createAppPassword(ctx context.Context, k *Kube, pod, user string) (string, error) {
	code := fmt.Sprintf(`
$_SERVER["HTTP_HOST"] = %[1]q; $_SERVER["SERVER_NAME"] = "localhost"; $_SERVER["REQUEST_URI"] = "/";
require "/var/www/html/wp-load.php";
$u = get_user_by("login", %[2]q);
if (!$u) { fwrite(STDERR, "no user %[2]s\n"); exit(1); }
if (!wp_is_application_passwords_available_for_user($u)) { fwrite(STDERR, "application passwords unavailable (WP_ENVIRONMENT_TYPE=local over http?)\n"); exit(1); }
$r = WP_Application_Passwords::create_new_application_password($u->ID, array("name" => "filesync-e2e-" . time()));
if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message() . "\n"); exit(1); }
echo "\n" . $r[0] . "\n";
`, siteHost, user)
	out, err := k.Exec(ctx, pod, appContainer, nil, "php", "-r", code)
	if err != nil {
		return "", fmt.Errorf("create application password: %w", err)
	}
	m := appPasswordRE.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return "", fmt.Errorf("create application password: no password in output: %s", excerpt(out))
	}
	return string(m[len(m)-1][1]), nil
}

func (w *WordPress) rest(ctx context.Context, pod, method, route string, query url.Values, body []byte, header http.Header) (int, []byte, error) {
	q := url.Values{"rest_route": {route}}
	for k, v := range query {
		q[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+cluster.PlaceholderHost+"/?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, route, err)
	}
	req.Host = siteHost
	req.SetBasicAuth(w.user, w.appPassword)
	for k, v := range header {
		req.Header[k] = v
	}
	return w.k.Do(ctx, pod, httpPort, req)
}

// Upload uploads a media file through the REST API of pod (POST /wp/v2/media).
func (w *WordPress) Upload(ctx context.Context, pod, filename, contentType string, data []byte) (Media, error) {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, filename))
	status, body, err := w.rest(ctx, pod, http.MethodPost, "/wp/v2/media", nil, data, h)
	if err != nil {
		return Media{}, fmt.Errorf("upload %s: %w", filename, err)
	}
	if status != http.StatusCreated {
		return Media{}, fmt.Errorf("upload %s on %s: HTTP %d: %s", filename, pod, status, excerpt(body))
	}
	var m Media
	if err := json.Unmarshal(body, &m); err != nil {
		return Media{}, fmt.Errorf("upload %s: decode response: %w", filename, err)
	}
	if m.Details.File == "" {
		return Media{}, fmt.Errorf("upload %s: no media_details.file in response: %s", filename, excerpt(body))
	}
	return m, nil
}

// Delete deletes a media item for good (force=true skips the trash) through the REST API of pod.
func (w *WordPress) Delete(ctx context.Context, pod string, id int) error {
	status, body, err := w.rest(ctx, pod, http.MethodDelete, fmt.Sprintf("/wp/v2/media/%d", id), url.Values{"force": {"true"}}, nil, nil)
	if err != nil {
		return fmt.Errorf("delete media %d: %w", id, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("delete media %d on %s: HTTP %d: %s", id, pod, status, excerpt(body))
	}
	return nil
}

// Fetch GETs a URL path of the site from pod, as a browser on the site's host would.
func (w *WordPress) Fetch(ctx context.Context, pod, urlPath string) (int, []byte, error) {
	return w.k.Get(ctx, pod, httpPort, siteHost, urlPath)
}

// testPNG returns a w×h PNG that no other call returns (random tiles over a gradient), large enough for
// WordPress to generate its thumbnail, medium and medium_large sizes.
func testPNG(w, h int) ([]byte, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	r := mrand.New(mrand.NewChaCha8(seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	tile := 32
	for ty := 0; ty < h; ty += tile {
		for tx := 0; tx < w; tx += tile {
			base := color.RGBA{R: uint8(r.IntN(256)), G: uint8(r.IntN(256)), B: uint8(r.IntN(256)), A: 255}
			for y := ty; y < min(ty+tile, h); y++ {
				for x := tx; x < min(tx+tile, w); x++ {
					img.Set(x, y, color.RGBA{R: base.R + uint8(x%tile), G: base.G + uint8(y%tile), B: base.B, A: 255})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
