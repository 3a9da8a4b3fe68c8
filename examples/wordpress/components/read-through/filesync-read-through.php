<?php
/**
 * Plugin Name: filesync read-through
 * Description: Read-your-writes across replicas with the filesync sidecar (docs/manifests.md): file names
 *   are unique across replicas, and an original another replica has just uploaded is fetched before it is
 *   post-processed or edited. Mounted into wp-content/mu-plugins from a ConfigMap.
 * Version: 1.0
 *
 * The sidecar's read-through is on FILESYNC_READ_THROUGH_URL (default http://127.0.0.1:8091), serving
 * GET/HEAD /<path under wp-content>: the local file, else the bucket's (downloaded), else a peer's, else 404.
 */

if (!defined('ABSPATH')) {
	exit;
}

function filesync_read_through_url() {
	if (defined('FILESYNC_READ_THROUGH_URL')) {
		return rtrim(FILESYNC_READ_THROUGH_URL, '/');
	}
	$env = getenv('FILESYNC_READ_THROUGH_URL');
	return rtrim($env ? $env : 'http://127.0.0.1:8091', '/');
}

/**
 * The path of $file relative to wp-content (the sidecar's --dir), or null if it is not under uploads.
 */
function filesync_rel($file) {
	$uploads = wp_get_upload_dir();
	$base = wp_normalize_path(untrailingslashit($uploads['basedir'])) . '/';
	$file = wp_normalize_path($file);
	if (strpos($file, $base) !== 0) {
		return null;
	}
	$content = wp_normalize_path(untrailingslashit(WP_CONTENT_DIR)) . '/';
	if (strpos($file, $content) !== 0) {
		return null;
	}
	return substr($file, strlen($content));
}

function filesync_url($rel) {
	return filesync_read_through_url() . '/' . implode('/', array_map('rawurlencode', explode('/', $rel)));
}

/**
 * Whether the file exists anywhere: in the bucket or on a peer replica (the read-through answers 200).
 */
function filesync_exists_elsewhere($rel) {
	$r = wp_remote_head(filesync_url($rel), array('timeout' => 5, 'redirection' => 0));
	return !is_wp_error($r) && wp_remote_retrieve_response_code($r) === 200;
}

/**
 * Reserves the name $rel for this upload in the shared database (an INSERT on wp_options' unique
 * option_name): of two replicas picking the same name at the same moment, before either has written the
 * file, only one gets it. Reservations older than a day are dropped now and then.
 */
function filesync_reserve($rel) {
	global $wpdb;
	$name = 'filesync_name_' . md5($rel);
	$n = $wpdb->query($wpdb->prepare(
		"INSERT IGNORE INTO {$wpdb->options} (option_name, option_value, autoload) VALUES (%s, %s, 'no')",
		$name, (string) time()
	));
	if (wp_rand(1, 100) === 1) {
		$wpdb->query($wpdb->prepare(
			"DELETE FROM {$wpdb->options} WHERE option_name LIKE %s AND CAST(option_value AS UNSIGNED) < %d",
			$wpdb->esc_like('filesync_name_') . '%', time() - DAY_IN_SECONDS
		));
	}
	return $n === 1;
}

/**
 * wp_unique_filename looks only at the local disk: also look in the bucket and on the peers through the
 * sidecar, and reserve the name, so two replicas never keep the same name for two uploads.
 */
function filesync_unique_filename($filename, $ext, $dir, $unique_filename_callback, $alt_filenames = array(), $number = '') {
	static $depth = 0;
	if ($depth > 0 || $unique_filename_callback) {
		return $filename;
	}
	$rel_dir = filesync_rel(trailingslashit($dir) . 'x');
	if ($rel_dir === null) {
		return $filename;
	}
	$rel_dir = dirname($rel_dir);
	$depth++;
	try {
		for ($i = 0; $i < 50; $i++) {
			$rel = $rel_dir . '/' . $filename;
			if (!file_exists(trailingslashit($dir) . $filename) && !filesync_exists_elsewhere($rel) && filesync_reserve($rel)) {
				return $filename;
			}
			// Taken somewhere: the next candidate, then WordPress's own local checks (sub-size names too).
			$info = pathinfo($filename);
			$stem = $info['filename'];
			$dot = isset($info['extension']) ? '.' . $info['extension'] : '';
			if (preg_match('/^(.*)-(\d+)$/', $stem, $m)) {
				$stem = $m[1] . '-' . ((int) $m[2] + 1);
			} else {
				$stem .= '-1';
			}
			$filename = wp_unique_filename($dir, $stem . $dot);
		}
		return $filename;
	} finally {
		$depth--;
	}
}
add_filter('wp_unique_filename', 'filesync_unique_filename', 10, 6);

/**
 * Fetches $file (an attachment's original) into the directory through the read-through if it is not here:
 * the bucket's copy, downloaded by the sidecar (X-Filesync-Fetch: store: a peer's bytes are never stored,
 * the writer uploads them). For an attachment created in the last two minutes, waits up to 15 s for the
 * writer's upload to land; for an older one, asks once.
 */
function filesync_fetch($file, $attachment_id = 0) {
	static $tried = array();
	if (!$file || file_exists($file) || isset($tried[$file])) {
		return $file;
	}
	$tried[$file] = true;
	$rel = filesync_rel($file);
	if ($rel === null) {
		return $file;
	}
	$recent = $attachment_id && (time() - (int) get_post_time('U', true, $attachment_id)) < 120;
	$deadline = microtime(true) + ($recent ? 15 : 0);
	do {
		$r = wp_remote_get(filesync_url($rel), array(
			'timeout' => 15, 'redirection' => 0, 'headers' => array('X-Filesync-Fetch' => 'store'),
		));
		clearstatcache(true, $file);
		if (!is_wp_error($r) && wp_remote_retrieve_response_code($r) === 200 && file_exists($file)) {
			break;
		}
		if (microtime(true) >= $deadline) {
			break;
		}
		usleep(250000);
	} while (true);
	return $file;
}

add_filter('get_attached_file', function ($file, $attachment_id) {
	return filesync_fetch($file, $attachment_id);
}, 10, 2);
add_filter('wp_get_original_image_path', function ($file, $attachment_id) {
	return filesync_fetch($file, $attachment_id);
}, 10, 2);
add_filter('load_image_to_edit_path', function ($file, $attachment_id) {
	return is_string($file) && !preg_match('#^https?://#', $file) ? filesync_fetch($file, $attachment_id) : $file;
}, 10, 2);
