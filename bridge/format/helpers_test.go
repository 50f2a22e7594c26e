package format

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"

	"maunium.net/go/mautrix/id"
)

// testMention knows a few nicks, including regex-special ones.
func testMention(nick string) (id.UserID, string, bool) {
	switch nick {
	case "bob":
		return "@bob:example.org", "Bob B", true
	case "[foo]":
		return "@foo:example.org", "Foo", true
	case "a|b":
		return "@ab:example.org", "A|B", true
	case "evil":
		return "@evil:example.org", `<b onclick="x">'&amp;`, true
	case "nodisplay":
		return "@nd:example.org", "", true
	case "zoë":
		return "@zoe:example.org", "Zoë", true
	}
	return "", "", false
}

// identityMention pills a few nicks with displayname == nick, so that the
// text content of formatted equals body.
func identityMention(nick string) (id.UserID, string, bool) {
	switch nick {
	case "bob", "[foo]", "a|b", "x", "a":
		return id.UserID("@u" + fmt.Sprint(len(nick)) + ":example.org"), nick, true
	}
	return "", "", false
}

var allowedAttrs = map[string]map[string]bool{
	"font":   {"color": true, "data-mx-color": true, "data-mx-bg-color": true},
	"strong": {}, "em": {}, "u": {}, "del": {}, "code": {},
	"a":  {"href": true},
	"br": {},
}

// checkMatrixHTML verifies that formatted is balanced HTML that uses only the
// elements and attributes ToMatrix may emit, and returns its text content
// (with <br> as '\n').
func checkMatrixHTML(formatted string) (string, error) {
	z := html.NewTokenizer(strings.NewReader(formatted))
	var stack []string
	var text strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				return "", z.Err()
			}
			if len(stack) != 0 {
				return "", fmt.Errorf("unclosed tags %v", stack)
			}
			return text.String(), nil
		case html.TextToken:
			text.Write(z.Text())
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attrs, ok := allowedAttrs[tok.Data]
			if !ok {
				return "", fmt.Errorf("element %q not allowed", tok.Data)
			}
			for _, a := range tok.Attr {
				if !attrs[a.Key] {
					return "", fmt.Errorf("attribute %q on %q not allowed", a.Key, tok.Data)
				}
				if a.Key == "href" && !strings.HasPrefix(a.Val, "https://matrix.to/#/@") {
					return "", fmt.Errorf("href %q", a.Val)
				}
				if strings.HasPrefix(a.Key, "data-mx-") || a.Key == "color" {
					if len(a.Val) != 7 || a.Val[0] != '#' || !hexAt(a.Val, 1) {
						return "", fmt.Errorf("colour %q", a.Val)
					}
				}
			}
			if tok.Data == "br" {
				text.WriteByte('\n')
				continue
			}
			if tt == html.SelfClosingTagToken {
				return "", fmt.Errorf("self-closing %q", tok.Data)
			}
			stack = append(stack, tok.Data)
		case html.EndTagToken:
			tok := z.Token()
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				return "", fmt.Errorf("unbalanced </%s>, open %v", tok.Data, stack)
			}
			stack = stack[:len(stack)-1]
		default:
			return "", fmt.Errorf("unexpected token %v", tt)
		}
	}
}
