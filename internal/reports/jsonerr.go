package reports

import "encoding/json"

type (
	jsonSyntaxError = json.SyntaxError
	jsonTypeError   = json.UnmarshalTypeError
)
