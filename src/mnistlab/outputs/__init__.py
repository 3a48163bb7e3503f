"""What is drawn or written for people: HTML reports, the chapter's figures, explanation sheets, diagrams."""
