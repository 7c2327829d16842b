package harness

import "github.com/berth-dev/berth/test/testkit"

// WaitFor and Poll are testkit's, so every suite waits alike: WaitFor
// checks a condition until it returns nil or fails tb with its last reason
// once the timeout passed; Poll returns that reason instead.
var (
	WaitFor = testkit.WaitFor
	Poll    = testkit.Poll
)
