// Package intoto verifies in-toto supply-chain metadata (a root layout and its
// link files) for one pulled subject, without running a command and without
// touching the file system.
//
// in-toto-golang's InTotoVerify runs every inspection command in the process
// working directory, writes link files there and recurses into sublayouts.
// None of that is acceptable inside a registry proxy, so this package composes
// the library's exported checks itself:
//
//   - the layout must carry a valid signature from every given layout key
//     (in_toto.VerifyLayoutSignatures semantics), must be well formed
//     (ValidateMetablock) and must not have expired at Input.Now;
//   - parameters are substituted (SubstituteParameters); a parameter the layout
//     uses but the caller does not supply is an error, as in Python in-toto;
//   - every step needs at least its threshold of links, each signed by a
//     distinct authorized functionary key (or a certificate that meets the
//     step's constraints); links of one step must agree on their artifacts
//     (ReduceStepsMetadata);
//   - every step's artifact rules hold (VerifyArtifacts);
//   - every inspection is evaluated as if its command were a no-op run in a
//     directory holding only the subject: materials = products =
//     {SubjectName: sha256}. A rule that only a command that ran could satisfy
//     (CREATE, MODIFY, DELETE) or that names another artifact than the subject
//     (MATCH, REQUIRE) fails closed, naming the rule (checkNoExecRules); the
//     rest are checked by in-toto against that synthetic link;
//   - the subject must be bound: the last step that lists SubjectName among its
//     products must have recorded exactly the pulled sha256, or, when no step
//     lists it, an inspection must consume it with a MATCH rule against a
//     verified step's artifacts;
//   - sublayouts (a link whose payload is a layout) are refused: verifying them
//     would need their inspections to run.
//
// Metadata is read from bytes: classic metablocks ({"signed","signatures"})
// and DSSE envelopes (payloadType application/vnd.in-toto+json).
//
// Time: the layout's expiry is checked against Input.Now. Certificate chains
// of certificate-identified functionaries are checked by in-toto-golang with
// crypto/x509's default, the wall clock; Result.ValidUntil accounts for the
// earliest certificate expiry so a cached result does not outlive it.
//
// An inspection whose rules hold for the subject alone (MATCH or REQUIRE of
// the subject, ALLOW, DISALLOW) passes even though its command, which may have
// been meant as a check, never ran. Result.Inspections lists such inspections
// for the audit line.
package intoto
