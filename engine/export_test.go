package engine

// InstanceID is instanceID, for tests that write an instance's journal as
// a worker would have left it.
var InstanceID = instanceID
