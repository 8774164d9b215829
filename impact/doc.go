// Package impact says what a policy change would do before it goes live:
// it replays the references a proxy served (from its audit log, or a list)
// under the current and the proposed policy and reports every verdict that
// changes. It judges nothing itself: the caller supplies a Judge per policy
// (trustproxy's runs the exact request path of a pull).
package impact
