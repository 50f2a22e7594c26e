package irc

import (
	"strconv"
	"strings"
)

// ISupport is a snapshot of the RPL_ISUPPORT (005) tokens the server sent.
type ISupport struct {
	// CaseMapping is the CASEMAPPING value ("rfc1459" by default).
	CaseMapping string
	// ChanTypes is the CHANTYPES value ("#&" by default).
	ChanTypes string
	// PrefixModes and PrefixSymbols come from PREFIX ("(ov)@+" by default):
	// PrefixModes[i] is the channel mode for the status symbol
	// PrefixSymbols[i], highest first.
	PrefixModes, PrefixSymbols string
	// Network is the NETWORK value, if any.
	Network string
	// LineLen is the LINELEN value, 0 when the server did not send it.
	LineLen int
	// Raw holds every token sent and not negated, with its unescaped value.
	Raw map[string]string
}

func defaultISupport() ISupport {
	return ISupport{
		CaseMapping:   "rfc1459",
		ChanTypes:     "#&",
		PrefixModes:   "ov",
		PrefixSymbols: "@+",
		Raw:           map[string]string{},
	}
}

func (is ISupport) clone() ISupport {
	raw := make(map[string]string, len(is.Raw))
	for k, v := range is.Raw {
		raw[k] = v
	}
	is.Raw = raw
	return is
}

// apply applies the tokens of one 005 line (the parameters between our nick
// and the trailing text). Tokens the engine reads itself are always applied;
// others are kept only while Raw holds fewer than maxISupportTokens, so a
// server cannot grow it without a bound. It returns how many it dropped.
func (is *ISupport) apply(tokens []string) (dropped int) {
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		if tok[0] == '-' {
			key := strings.ToUpper(tok[1:])
			delete(is.Raw, key)
			is.set(key, "", false)
			continue
		}
		key, value, _ := strings.Cut(tok, "=")
		key = strings.ToUpper(key)
		value = unescapeISupport(value)
		if _, known := is.Raw[key]; !known && len(is.Raw) >= maxISupportTokens && !engineToken[key] {
			dropped++
			continue
		}
		is.Raw[key] = value
		is.set(key, value, true)
	}
	return dropped
}

// engineToken are the tokens the engine and the bridge read: never dropped by the bound.
var engineToken = map[string]bool{
	"CASEMAPPING": true, "CHANTYPES": true, "PREFIX": true, "NETWORK": true, "LINELEN": true,
	"CHANMODES": true, "MODES": true, "NICKLEN": true, "TOPICLEN": true, "CHATHISTORY": true,
	"STATUSMSG": true, "UTF8ONLY": true, "MSGREFTYPES": true,
}

func (is *ISupport) set(key, value string, present bool) {
	def := defaultISupport()
	switch key {
	case "CASEMAPPING":
		if present && value != "" {
			is.CaseMapping = strings.ToLower(value)
		} else {
			is.CaseMapping = def.CaseMapping
		}
	case "CHANTYPES":
		if present {
			is.ChanTypes = value
		} else {
			is.ChanTypes = def.ChanTypes
		}
	case "PREFIX":
		is.PrefixModes, is.PrefixSymbols = def.PrefixModes, def.PrefixSymbols
		if present {
			if value == "" {
				is.PrefixModes, is.PrefixSymbols = "", ""
			} else if modes, symbols, ok := parsePrefix(value); ok {
				is.PrefixModes, is.PrefixSymbols = modes, symbols
			}
		}
	case "NETWORK":
		is.Network = ""
		if present {
			is.Network = value
		}
	case "LINELEN":
		is.LineLen = 0
		if present {
			if n, err := strconv.Atoi(value); err == nil && n > 0 {
				is.LineLen = n
			}
		}
	}
}

func parsePrefix(v string) (modes, symbols string, ok bool) {
	if !strings.HasPrefix(v, "(") {
		return "", "", false
	}
	modes, symbols, ok = strings.Cut(v[1:], ")")
	if !ok || len(modes) != len(symbols) {
		return "", "", false
	}
	return modes, symbols, true
}

// unescapeISupport decodes the \xHH escapes allowed in ISUPPORT values
// (https://modern.ircdocs.horse/#rplisupport-parameters).
func unescapeISupport(v string) string {
	if !strings.Contains(v, `\x`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+4 <= len(v) && v[i+1] == 'x' {
			// Control characters stay escaped: values end up in room names.
			if n, err := strconv.ParseUint(v[i+2:i+4], 16, 8); err == nil && n >= 0x20 && n != 0x7f {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
