// Package mediatype is the sidecar's one table of media types by file extension: the Content-Type an
// upload stores (gcsstore) and the read-through serves. It is a table of its own, not the host's
// (mime.TypeByExtension reads /etc/mime.types, which the FROM scratch image lacks: a laptop and a pod
// would store different types), and never a guess from the bytes.
package mediatype

import (
	"path"
	"strings"
)

// Default is the media type of a name the table does not know, as gcloud storage and gsutil store it.
const Default = "application/octet-stream"

// types maps a lower-case extension to the media type `gcloud storage cp` and `gsutil cp` store for it on
// Debian (Python's mimetypes with Debian's /etc/mime.types), over the files a WordPress site serves and
// its media library accepts; .map (source maps) is JSON.
var types = map[string]string{
	// the web: style, scripts, data, fonts
	".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
	".map": "application/json", ".webmanifest": "application/manifest+json", ".wasm": "application/wasm",
	".html": "text/html", ".htm": "text/html", ".xhtml": "application/xhtml+xml", ".xml": "application/xml",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".eot": "application/vnd.ms-fontobject",
	// images
	".png": "image/png", ".apng": "image/apng", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".jxl": "image/jxl", ".svg": "image/svg+xml",
	".ico": "image/vnd.microsoft.icon", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
	".heic": "image/heic", ".heif": "image/heif", ".psd": "image/vnd.adobe.photoshop",
	// video
	".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg", ".mov": "video/quicktime",
	".qt": "video/quicktime", ".avi": "video/x-msvideo", ".mpg": "video/mpeg", ".mpeg": "video/mpeg",
	".mkv": "video/x-matroska", ".3gp": "audio/3gpp", ".3g2": "audio/3gpp2",
	// audio
	".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
	".opus": "audio/ogg", ".wav": "audio/x-wav", ".flac": "audio/flac", ".wma": "audio/x-ms-wma",
	// text
	".txt": "text/plain", ".csv": "text/csv", ".tsv": "text/tab-separated-values", ".vtt": "text/vtt",
	".srt": "text/plain", ".md": "text/markdown", ".ics": "text/calendar", ".rtf": "application/rtf",
	// documents and archives
	".pdf": "application/pdf", ".ps": "application/postscript", ".eps": "application/postscript",
	".ai": "application/postscript", ".epub": "application/epub+zip",
	".doc": "application/msword", ".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint",
	".pps":   "application/vnd.ms-powerpoint",
	".docx":  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".dotx":  "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
	".xlsx":  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx":  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".ppsx":  "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
	".odt":   "application/vnd.oasis.opendocument.text",
	".ods":   "application/vnd.oasis.opendocument.spreadsheet",
	".odp":   "application/vnd.oasis.opendocument.presentation",
	".pages": "application/vnd.apple.pages", ".numbers": "application/vnd.apple.numbers",
	".zip": "application/zip", ".tar": "application/x-tar", ".7z": "application/x-7z-compressed",
	".rar": "application/vnd.rar",
}

// Known returns the media type of a file named name (a slash-separated path) by its extension,
// case-insensitively, and whether the table knows it.
func Known(name string) (string, bool) {
	t, ok := types[strings.ToLower(path.Ext(name))]
	return t, ok
}

// Of returns the media type of a file named name: the table's, else Default.
func Of(name string) string {
	if t, ok := Known(name); ok {
		return t
	}
	return Default
}
