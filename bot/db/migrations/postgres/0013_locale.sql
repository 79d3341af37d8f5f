-- Reserved for the locale migration of a parallel branch (it replaces this file when merged).
SELECT 1;
