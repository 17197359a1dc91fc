// Placeholder: the client library is being written (issue 3).
