package bridge

import "testing"

// Regression for the attack class "a newline in a join argument ran commands as the bridge bot".
func TestSafeArgRejectsInjection(t *testing.T) {
	for _, bad := range []string{"#a\r\nPRIVMSG NickServ :DROP", "#a\nQUIT", "#a b", "#a,#b", "#a\x00", "", "#a\x07"} {
		if safeArg(bad) == nil {
			t.Errorf("safeArg(%q) accepted", bad)
		}
	}
	if err := safeArg("#ok[chan]"); err != nil {
		t.Error(err)
	}
}
