package buildpush

import (
	"github.com/hoist-ci/hoist/internal/sandbox"
)

// checkEmulation refuses a RUN for a platform this host cannot execute
// (no binfmt_misc emulator registered for it) and says how a foreign
// one runs.
func (b *builder) checkEmulation(root, platform string) error {
	p, err := sandbox.ParsePlatform(platform)
	if err != nil {
		return err
	}
	how, err := sandbox.CheckEmulation(root, p)
	if err != nil {
		return err
	}
	if how != "native" {
		b.o.Log.Info("RUN through an emulator", "platform", platform, "how", how)
	}
	return nil
}
