-- 010: a placeholder that keeps the core's migrations numbered without gaps
-- on this branch (wt5-dkim): the version is taken by another branch, whose
-- file replaces this one when they merge.  It changes nothing.
SELECT 1;
