//! A table's columns, declared once as a `[Column]` table: the Delta schema it is
//! created with and the Arrow schema its rows are written in both derive from it, and
//! its readers take each column by name with the one cast every reader needs (Python
//! writes strings as LargeUtf8, timestamps with or without a zone).

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::{DataType, StructField};

/// The type of a column vitals writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `string`.
    Text,
    /// `double`.
    Double,
    /// `long` (64-bit integer).
    Long,
    /// `timestamp` (µs, UTC).
    Timestamp,
}

/// One column of a table vitals writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: ColumnType,
    /// Whether it may be null.
    pub nullable: bool,
}

impl Column {
    /// A column that is never null.
    pub const fn required(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            nullable: false,
        }
    }

    /// A column that may be null.
    pub const fn optional(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            nullable: true,
        }
    }
}

/// The Delta schema of `columns` (what a table is created with).
pub fn delta_fields(columns: &[Column]) -> Vec<StructField> {
    columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::Text => DataType::STRING,
                ColumnType::Double => DataType::DOUBLE,
                ColumnType::Long => DataType::LONG,
                ColumnType::Timestamp => DataType::TIMESTAMP,
            };
            StructField::new(c.name, ty, c.nullable)
        })
        .collect()
}

/// The Arrow schema of `columns` (what rows are written in).
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    ColumnType::Text => ArrowType::Utf8,
                    ColumnType::Double => ArrowType::Float64,
                    ColumnType::Long => ArrowType::Int64,
                    ColumnType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                };
                Field::new(c.name, ty, c.nullable)
            })
            .collect::<Vec<_>>(),
    ))
}

/// The names of `columns`, in order.
pub fn names(columns: &[Column]) -> Vec<&'static str> {
    columns.iter().map(|c| c.name).collect()
}

/// A text column of values.
pub fn text_array<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A timestamp column (µs since the epoch, UTC).
pub fn time_array(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

/// A double column, nulls allowed.
pub fn double_array(values: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

/// A long column.
pub fn long_array(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}`"))
}

/// Column `name` of a batch as text, whichever string type the writer used.
pub fn text(batch: &RecordBatch, name: &str) -> Result<StringArray, String> {
    let c = cast(column(batch, name)?, &ArrowType::Utf8).map_err(|e| format!("`{name}`: {e}"))?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| format!("`{name}` is not text"))
}

/// Column `name` of a batch as µs timestamps (a zone-less one read as UTC).
pub fn times(batch: &RecordBatch, name: &str) -> Result<TimestampMicrosecondArray, String> {
    let c = cast(
        column(batch, name)?,
        &ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
    .map_err(|e| format!("`{name}`: {e}"))?;
    c.as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| format!("`{name}` is not a timestamp"))
}

/// Column `name` of a batch as doubles.
pub fn doubles(batch: &RecordBatch, name: &str) -> Result<Float64Array, String> {
    let c = cast(column(batch, name)?, &ArrowType::Float64).map_err(|e| format!("`{name}`: {e}"))?;
    c.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| format!("`{name}` is not a number"))
}

/// Column `name` of a batch as 64-bit integers.
pub fn longs(batch: &RecordBatch, name: &str) -> Result<Int64Array, String> {
    let c = cast(column(batch, name)?, &ArrowType::Int64).map_err(|e| format!("`{name}`: {e}"))?;
    c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| format!("`{name}` is not an integer"))
}

/// The value at `i`, or none when it is null.
pub fn opt<T: Array>(a: &T, i: usize, value: impl Fn(&T, usize) -> f64) -> Option<f64> {
    (!a.is_null(i)).then(|| value(a, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::LargeStringArray;

    const COLUMNS: [Column; 3] = [
        Column::required("id", ColumnType::Text),
        Column::optional("value", ColumnType::Double),
        Column::required("at", ColumnType::Timestamp),
    ];

    #[test]
    fn both_schemas_derive_from_the_one_column_table() {
        let delta = delta_fields(&COLUMNS);
        let arrow = arrow_schema(&COLUMNS);
        assert_eq!(delta.len(), 3);
        for (d, a) in delta.iter().zip(arrow.fields()) {
            assert_eq!(
                (d.name().as_str(), d.is_nullable()),
                (a.name().as_str(), a.is_nullable())
            );
        }
        assert_eq!(delta[2].data_type(), &DataType::TIMESTAMP);
        assert_eq!(
            arrow.field(2).data_type(),
            &ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(names(&COLUMNS), ["id", "value", "at"]);
    }

    #[test]
    fn readers_cast_what_python_writes() {
        let large: ArrayRef = Arc::new(LargeStringArray::from(vec!["a", "b"]));
        let batch = RecordBatch::try_from_iter([("id", large)]).unwrap();
        let ids = text(&batch, "id").unwrap();
        assert_eq!((ids.value(0), ids.value(1)), ("a", "b"));
        assert_eq!(text(&batch, "nope").unwrap_err(), "no column `nope`");
    }
}
