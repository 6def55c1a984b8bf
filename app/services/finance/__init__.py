"""Month-end close: a finance user (or an admin) closes a brand's month, its Overview figures are stored as signed,
and later source changes to it show as restatement lines instead of rewriting it (`rules` / `reads` / `writes`)."""
