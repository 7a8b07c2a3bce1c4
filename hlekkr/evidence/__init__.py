"""The evidence bundle: one document per media item that gathers what media, analysis and review know about it.
It lives in the roof of the project because it reads across apps (which no app may do downward)."""
