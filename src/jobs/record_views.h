/*
 * record_views.h - the client's scanned record (aerospike/as_record.h) and the .asb codec's
 * record (asb/asb.h) are two views of one layout, so backup hands scanned records to the encoder
 * and restore hands decoded records to the writer without copying. These checks keep it so.
 */
#ifndef ABS_JOBS_RECORD_VIEWS_H
#define ABS_JOBS_RECORD_VIEWS_H

#include <stddef.h>

#include "aerospike/as_record.h"
#include "asb/asb.h"

_Static_assert(sizeof(struct as_record) == sizeof(struct asb_record), "record view layout");
_Static_assert(offsetof(struct as_record, bins) == offsetof(struct asb_record, bins), "record view layout");
_Static_assert(offsetof(struct as_record, key) == offsetof(struct asb_record, key), "record view layout");
_Static_assert(offsetof(struct as_record, void_time) == offsetof(struct asb_record, void_time), "layout");
_Static_assert(sizeof(struct as_bin) == sizeof(struct asb_bin), "bin view layout");
_Static_assert(offsetof(struct as_bin, v) == offsetof(struct asb_bin, v), "bin view layout");
_Static_assert(sizeof(struct as_value) == sizeof(struct asb_value), "value view layout");
_Static_assert(offsetof(struct as_value, data) == offsetof(struct asb_value, data), "value view layout");

#endif
