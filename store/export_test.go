package store

// EncodeEntryForTest exposes encodeEntry to the package's tests.
var EncodeEntryForTest = encodeEntry
