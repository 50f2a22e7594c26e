package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/sbdb"
)

// Media from Matrix reaches IRC as a link to the bridge's public-media endpoint (bridgev2's
// public_media: signed, expiring links; encrypted files are decrypted by the bridge when the link
// is opened). Such a link hands the decrypted file to whoever holds it, so in a portal it is off
// until a room admin turns it on with `media-links on`, which posts a notice saying so.

var cmdMediaLinks = &commands.FullHandler{
	Func: fnMediaLinks,
	Name: "media-links",
	Help: commands.HelpMeta{
		Section:     commands.HelpSectionChats,
		Description: "In a channel or private chat room: send files, images and voice from Matrix to IRC as links (anyone with a link can download the file, decrypted, until it expires). Needs power level 50 in the room.",
		Args:        "<on|off>",
	},
	RequiresPortal: true,
}

var errMediaOff = failure("files are not sent to IRC from this room: a link would expose the decrypted file. A room admin can allow it with `media-links on`")

// publicMedia is the Matrix side's public-media link maker, when the admin enabled it.
func (c *IRCConnector) publicMedia() bridgev2.MatrixConnectorWithPublicMedia {
	if c.Bridge == nil {
		return nil
	}
	pm, ok := c.Bridge.Matrix.(bridgev2.MatrixConnectorWithPublicMedia)
	if !ok || pm.GetPublicMediaAddress("mxc://sealbridge.invalid/probe") == "" {
		return nil
	}
	return pm
}

func fnMediaLinks(ce *commands.Event) {
	conn, ok := ce.Bridge.Network.(*IRCConnector)
	if !ok {
		return
	}
	meta, ok := ce.Portal.Metadata.(*sbdb.PortalMetadata)
	if len(ce.Args) != 1 || !ok {
		ce.Reply("Usage: `$cmdprefix media-links on` or `$cmdprefix media-links off`, in a portal room.")
		return
	}
	on := strings.EqualFold(ce.Args[0], "on")
	if !on && !strings.EqualFold(ce.Args[0], "off") {
		ce.Reply("Usage: `$cmdprefix media-links on` or `$cmdprefix media-links off`.")
		return
	}
	if !ce.User.Permissions.Admin {
		levels, err := ce.Bridge.Matrix.GetPowerLevels(ce.Ctx, ce.RoomID)
		if err != nil || levels.GetUserLevel(ce.User.MXID) < 50 {
			ce.Reply("Only a room admin (power level 50) can change how files reach IRC here.")
			return
		}
	}
	if on && conn.publicMedia() == nil {
		ce.Reply("This bridge does not serve media links: the admin has not enabled `public_media` (with `appservice.public_address`).")
		return
	}
	if meta.MediaLinks == on {
		ce.Reply("Media links are already %s in this room.", map[bool]string{true: "on", false: "off"}[on])
		return
	}
	meta.MediaLinks = on
	if err := ce.Portal.Save(ce.Ctx); err != nil {
		ce.Reply("Failed to save the setting: %v", err)
		return
	}
	if on {
		ce.Reply("⚠️ Media links are on: files, images and voice sent here now reach IRC as links. Anyone with such a link, on IRC or wherever it is passed on, can download the file, decrypted, until the link expires. `$cmdprefix media-links off` stops it for new files.")
	} else {
		ce.Reply("Media links are off: files sent here no longer reach IRC.")
	}
}

// mediaText is the IRC text of a Matrix file, image, video or voice message: its caption or file
// name and the link.
func (cl *IRCClient) mediaText(ctx context.Context, msg *bridgev2.MatrixMessage) (string, error) {
	meta, _ := msg.Portal.Metadata.(*sbdb.PortalMetadata)
	if meta == nil || !meta.MediaLinks {
		return "", errMediaOff
	}
	pm := cl.connector.publicMedia()
	if pm == nil {
		return "", failure("files are not sent to IRC: the bridge's public media links are turned off")
	}
	link, err := pm.GetPublicMediaAddressForEvent(ctx, msg.Content)
	if err != nil || link == "" {
		if errors.Is(err, bridgev2.ErrPublicMediaDatabaseDisabled) {
			return "", failure("files from encrypted rooms need `public_media.use_database` in the bridge config")
		}
		return "", fmt.Errorf("failed to make a link for the file: %w", err)
	}
	// The file name and caption pass the same control-character filter as message text: a name
	// starting with \x01 would otherwise go out as a CTCP (a DCC offer, say).
	name := format.OneLine(format.StripControls(msg.Content.GetFileName()), 200)
	label := map[event.MessageType]string{event.MsgImage: "image", event.MsgVideo: "video", event.MsgAudio: "audio", event.MsgFile: "file"}[msg.Content.MsgType]
	if caption := format.OneLine(format.StripControls(msg.Content.Body), 300); msg.Content.FileName != "" && caption != "" && msg.Content.Body != msg.Content.FileName {
		return caption + " (" + label + ": " + name + ") " + link, nil
	}
	if name == "" {
		return label + ": " + link, nil
	}
	return name + " " + link, nil
}

// mediaPruneEvery is how often expired public-media links are deleted.
const mediaPruneEvery = time.Hour

// pruneMedia deletes the public-media rows whose links have expired, at start and every
// mediaPruneEvery until ctx ends. bridgev2 refuses an expired link but keeps its row, and for a
// file from an encrypted room that row holds the file's decryption key.
func (c *IRCConnector) pruneMedia(ctx context.Context) {
	log := c.Bridge.Log.With().Str("component", "public_media").Logger()
	tick := time.NewTicker(mediaPruneEvery)
	defer tick.Stop()
	for {
		if n, err := c.db.deleteExpiredMedia(ctx, time.Now()); err != nil {
			log.Err(err).Msg("Failed to delete expired public media links")
		} else if n > 0 {
			log.Debug().Int64("links", n).Msg("Deleted expired public media links and their keys")
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
