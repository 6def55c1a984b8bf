"""Staff: `signin` (password check, throttles, sessions, sign-out), `writes` (audited staff administration),
`reads` (the staff list, brands, names), `demo` (the demo accounts)."""
