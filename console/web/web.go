// Package web holds the console's templates and static files, embedded in the
// binary so the console needs nothing beside it and no build step: plain CSS, our
// own small terminal.js, and xterm.js vendored under static/vendor/xterm/.
package web

import "embed"

// Templates are the html/template files: layout.html and one file per page.
//
//go:embed templates/*.html
var Templates embed.FS

// Static is served under /static/.
//
//go:embed static
var Static embed.FS
