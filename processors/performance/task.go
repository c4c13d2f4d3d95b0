package performance

import (
	"errors"
	"fmt"
)

// Task is the kind of model a State measures. The zero value is not a task.
type Task uint8

// Tasks. Their numbers are part of the binary encoding.
const (
	TaskBinary     Task = 1 // a score per prediction, a boolean label
	TaskMulticlass Task = 2 // a predicted class, an actual class, optional class probabilities
	TaskRegression Task = 3 // a predicted number, an actual number
)

// ErrUnknownTask is returned by ParseTask for a name that is not a task.
var ErrUnknownTask = errors.New("unknown task")

// String returns "binary", "multiclass" or "regression".
func (t Task) String() string {
	switch t {
	case TaskBinary:
		return "binary"
	case TaskMulticlass:
		return "multiclass"
	case TaskRegression:
		return "regression"
	}
	return fmt.Sprintf("Task(%d)", uint8(t))
}

func (t Task) valid() bool { return t >= TaskBinary && t <= TaskRegression }

// ParseTask returns the task named s, as Task.String spells it.
func ParseTask(s string) (Task, error) {
	for t := TaskBinary; t <= TaskRegression; t++ {
		if s == t.String() {
			return t, nil
		}
	}
	return 0, fmt.Errorf("parse task %q: %w (use binary, multiclass or regression)", s, ErrUnknownTask)
}
