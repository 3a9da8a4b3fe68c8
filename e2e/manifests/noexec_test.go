package manifests_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/filesync/filesync/e2e/manifests"
)

// TestWordPressNoExec: both overlays keep code out of uploads/ twice: the sidecar never syncs an
// executable name there (FILESYNC_NO_EXEC=uploads/**), and Apache, from a drop-in in conf-enabled/, runs
// none there (PHP's engine off, no CGI or includes) and refuses every name the sidecar's
// filter.Executable covers, while media files are served as ever.
func TestWordPressNoExec(t *testing.T) {
	t.Parallel()
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		wp := deployment(t, m, "wordpress")
		spec := &wp.Spec.Template.Spec
		if got := mustEnv(t, m, findContainer(spec, sidecarName))["FILESYNC_NO_EXEC"]; got != "uploads/**" {
			t.Errorf("FILESYNC_NO_EXEC = %q, want uploads/**", got)
		}
		conf := configMapFile(t, m, spec, findContainer(spec, "wordpress"), "/etc/apache2/conf-enabled/filesync-no-exec-uploads.conf")
		for _, want := range []string{
			`<Directory "` + wpContentPath + `/uploads">`,
			"<IfModule php_module>",
			"php_admin_flag engine off",
			"Options -ExecCGI -Includes",
			"Require all denied",
		} {
			if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(want)).MatchString(conf) {
				t.Errorf("the Apache configuration lacks %q:\n%s", want, conf)
			}
		}
		if strings.Count(conf, "<Directory") != strings.Count(conf, "</Directory>") ||
			strings.Count(conf, "<IfModule") != strings.Count(conf, "</IfModule>") ||
			strings.Count(conf, "<FilesMatch") != strings.Count(conf, "</FilesMatch>") {
			t.Errorf("unbalanced sections in the Apache configuration:\n%s", conf)
		}
		fm := regexp.MustCompile(`(?m)^\s*<FilesMatch "([^"]+)">`).FindStringSubmatch(conf)
		if fm == nil {
			t.Fatalf("no <FilesMatch \"...\"> in the Apache configuration:\n%s", conf)
		}
		denied, err := regexp.Compile(fm[1]) // Apache's PCRE and Go's RE2 read this one alike
		if err != nil {
			t.Fatalf("FilesMatch %q: %v", fm[1], err)
		}
		for _, name := range []string{"x.php", "X.PHP", "x.pHp7", "x.php5", "x.php.jpg", "x.php.", "x.phtml", "x.phar",
			"x.pht", "x.phps", "x.cgi", "x.pl", "x.shtml", ".user.ini", "php.ini"} {
			if !denied.MatchString(name) {
				t.Errorf("Apache serves %s under uploads/ (FilesMatch %q)", name, fm[1])
			}
		}
		for _, name := range []string{"photo.jpg", "php.jpg", "x.phpx.png", "report.pdf", "x-1024x768.webp", "x.plain.txt", "x.html"} {
			if denied.MatchString(name) {
				t.Errorf("Apache refuses the media file %s (FilesMatch %q)", name, fm[1])
			}
		}
	})
}
