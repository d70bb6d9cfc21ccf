package console

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Kinds of diff rows, also their CSS classes.
const (
	diffEqual   = "equal"
	diffChanged = "changed"
	diffAdded   = "added"
	diffRemoved = "removed"
)

// diffRow is one line of a side-by-side diff. A side without a line has number 0.
type diffRow struct {
	Kind            string
	LeftNo, RightNo int
	Left, Right     string
}

// sideBySide aligns the lines of a and b: equal lines face each other, replaced
// runs face each other line by line (the longer side's extra lines face nothing),
// deletions show on the left only and insertions on the right only. Lines common to
// both sequences are never treated as junk (difflib's autojunk would call the
// frequent "- name:" lines of a YAML list junk and misalign them).
func sideBySide(a, b string) []diffRow {
	al, bl := splitLines(a), splitLines(b)
	m := difflib.NewMatcherWithJunk(al, bl, false, nil)
	var rows []diffRow
	for _, op := range m.GetOpCodes() {
		switch op.Tag {
		case 'e':
			for i := 0; i < op.I2-op.I1; i++ {
				rows = append(rows, diffRow{Kind: diffEqual, LeftNo: op.I1 + i + 1, RightNo: op.J1 + i + 1, Left: al[op.I1+i], Right: bl[op.J1+i]})
			}
		case 'd':
			for i := op.I1; i < op.I2; i++ {
				rows = append(rows, diffRow{Kind: diffRemoved, LeftNo: i + 1, Left: al[i]})
			}
		case 'i':
			for j := op.J1; j < op.J2; j++ {
				rows = append(rows, diffRow{Kind: diffAdded, RightNo: j + 1, Right: bl[j]})
			}
		case 'r':
			n := max(op.I2-op.I1, op.J2-op.J1)
			for k := 0; k < n; k++ {
				r := diffRow{Kind: diffChanged}
				if i := op.I1 + k; i < op.I2 {
					r.LeftNo, r.Left = i+1, al[i]
				}
				if j := op.J1 + k; j < op.J2 {
					r.RightNo, r.Right = j+1, bl[j]
				}
				rows = append(rows, r)
			}
		}
	}
	return rows
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
