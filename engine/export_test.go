package engine

// InstanceID is instanceID, for tests that write an instance's journal as
// a worker would have left it.
var InstanceID = instanceID

// SetCommandHook makes f run as each command passed its checks, before it
// is sent (nil: nothing), with the command's kind ("decide", "cancel"...).
func SetCommandHook(f func(kind string)) { testHookCommand = f }
