package format

import (
	"fmt"
	"strconv"
	"strings"
)

// color is an RGB colour, or the terminal/client default when !set.
type color struct {
	set bool
	rgb uint32 // 0xRRGGBB
}

func rgb(v uint32) color { return color{set: true, rgb: v} }

// html returns the colour as "#rrggbb".
func (c color) html() string { return fmt.Sprintf("#%06x", c.rgb) }

// mircPalette is the mIRC colour table for codes 0-98, as documented at
// https://modern.ircdocs.horse/formatting.html#colors (99 means "default").
var mircPalette = [99]uint32{
	0xffffff, 0x000000, 0x00007f, 0x009300, 0xff0000, 0x7f0000, 0x9c009c, 0xfc7f00,
	0xffff00, 0x00fc00, 0x009393, 0x00ffff, 0x0000fc, 0xff00ff, 0x7f7f7f, 0xd2d2d2,
	0x470000, 0x472100, 0x474700, 0x324700, 0x004700, 0x00472c, 0x004747, 0x002747,
	0x000047, 0x2e0047, 0x470047, 0x47002a, 0x740000, 0x743a00, 0x747400, 0x517400,
	0x007400, 0x007449, 0x007474, 0x004074, 0x000074, 0x4b0074, 0x740074, 0x740045,
	0xb50000, 0xb56300, 0xb5b500, 0x7db500, 0x00b500, 0x00b571, 0x00b5b5, 0x0063b5,
	0x0000b5, 0x7500b5, 0xb500b5, 0xb5006b, 0xff0000, 0xff8c00, 0xffff00, 0xb2ff00,
	0x00ff00, 0x00ffa0, 0x00ffff, 0x008cff, 0x0000ff, 0xa500ff, 0xff00ff, 0xff0098,
	0xff5959, 0xffb459, 0xffff71, 0xcfff60, 0x6fff6f, 0x65ffc9, 0x6dffff, 0x59b4ff,
	0x5959ff, 0xc459ff, 0xff66ff, 0xff59bc, 0xff9c9c, 0xffd39c, 0xffff9c, 0xe2ff9c,
	0x9cff9c, 0x9cffdb, 0x9cffff, 0x9cd3ff, 0x9c9cff, 0xdc9cff, 0xff9cff, 0xff94d3,
	0x000000, 0x131313, 0x282828, 0x363636, 0x4d4d4d, 0x656565, 0x818181, 0x9f9f9f,
	0xbcbcbc, 0xe2e2e2, 0xffffff,
}

// Colours used for reverse video (\x16) when the swapped colour is the
// client default: we cannot know the reader's theme, so pick a pair that is
// readable on both light and dark themes.
var (
	reverseDefaultFG = rgb(0xffffff)
	reverseDefaultBG = rgb(0x000000)
)

// paletteColor parses the one- or two-digit mIRC colour number s.
// 99 and anything out of range is the default colour.
func paletteColor(s string) color {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= len(mircPalette) {
		return color{}
	}
	return rgb(mircPalette[n])
}

// hexColor parses six hex digits.
func hexColor(s string) color {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 6 {
		return color{}
	}
	return rgb(uint32(v))
}

// cssNamedColors are the HTML 4 colour keywords that <font color> accepts.
var cssNamedColors = map[string]uint32{
	"black": 0x000000, "silver": 0xc0c0c0, "gray": 0x808080, "grey": 0x808080,
	"white": 0xffffff, "maroon": 0x800000, "red": 0xff0000, "purple": 0x800080,
	"fuchsia": 0xff00ff, "magenta": 0xff00ff, "green": 0x008000, "lime": 0x00ff00,
	"olive": 0x808000, "yellow": 0xffff00, "navy": 0x000080, "blue": 0x0000ff,
	"teal": 0x008080, "aqua": 0x00ffff, "cyan": 0x00ffff, "orange": 0xffa500,
}

// parseCSSColor parses a Matrix HTML colour attribute: "#rrggbb", "#rgb" or a
// basic colour name. Anything else is the default colour.
func parseCSSColor(s string) color {
	s = strings.ToLower(strings.TrimSpace(s))
	if v, ok := cssNamedColors[s]; ok {
		return rgb(v)
	}
	if !strings.HasPrefix(s, "#") {
		return color{}
	}
	h := s[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 || !hexAt(h, 0) {
		return color{}
	}
	return hexColor(h)
}

// nearestMIRC returns the mIRC colour number among the 16 basic colours
// (0-15) closest to c. We do not emit the extended colours 16-98 or \x04 hex
// colours: many clients (HexChat, irssi themes, most mobile clients) render
// only the basic 16, and a nearby basic colour beats an unrendered code.
// Distance is the "redmean" approximation of perceived colour difference.
func nearestMIRC(c color) int {
	best, bestD := 0, int64(-1)
	r1, g1, b1 := int64(c.rgb>>16), int64(c.rgb>>8&0xff), int64(c.rgb&0xff)
	for i := 0; i < 16; i++ {
		p := mircPalette[i]
		r2, g2, b2 := int64(p>>16), int64(p>>8&0xff), int64(p&0xff)
		rm := (r1 + r2) / 2
		dr, dg, db := r1-r2, g1-g2, b1-b2
		d := (512+rm)*dr*dr/256 + 4*dg*dg + (767-rm)*db*db/256
		if bestD < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}
