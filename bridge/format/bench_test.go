package format

import "testing"

const benchIRC = "bob: \x02look\x02 at \x0304,01this\x03 https://example.org/some/path and [foo], it is \x1dreally\x1d neat 😀 漢字"

const benchHTML = `<mx-reply><blockquote><a href="https://matrix.to/#/!r:e.org/$ev">In reply to</a></blockquote></mx-reply>` +
	`<a href="https://matrix.to/#/@bob:example.org">Bob</a>: <strong>look</strong> at <font color="#ff0000">this</font> ` +
	`<a href="https://example.org">link</a><ul><li>one</li><li><code>two</code></li></ul>`

func BenchmarkToMatrix(b *testing.B) {
	for b.Loop() {
		ToMatrix(benchIRC, testMention)
	}
}

func BenchmarkToIRC(b *testing.B) {
	for b.Loop() {
		ToIRC("", benchHTML, testPill)
	}
}

func BenchmarkSplit(b *testing.B) {
	text := ToIRC("", benchHTML+benchHTML+benchHTML+benchHTML, testPill)
	for b.Loop() {
		Split(text, 100)
	}
}
