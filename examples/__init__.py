"""Examples of host applications built on personal_assistant_db."""
