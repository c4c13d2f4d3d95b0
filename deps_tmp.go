//go:build tools

package deps

import (
	_ "github.com/apache/arrow/go/v17/arrow"
	_ "github.com/apache/arrow/go/v17/arrow/array"
	_ "github.com/apache/arrow/go/v17/arrow/ipc"
	_ "github.com/apache/arrow/go/v17/arrow/memory"
	_ "github.com/apache/arrow/go/v17/arrow/compute"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/compress"
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/urfave/cli/v2"
	_ "github.com/urfave/cli/v2/altsrc"
	_ "github.com/rs/zerolog"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "go.uber.org/goleak"
	_ "gopkg.in/yaml.v3"
	_ "golang.org/x/sync/errgroup"
	_ "github.com/valyala/fastjson"
	_ "github.com/google/uuid"
)
