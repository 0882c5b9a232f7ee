/*
 * sio_json.h — internal: kw_sio_decode that hands over the payload jansson parsed.
 *
 * The strict decoder has to parse the JSON payload to check it; a server that then
 * parsed the same text again (json_loadb of kw_sio_packet.data) would pay the dominant
 * cost of a relay twice. keywaved and the C client include this header (they link
 * jansson anyway); public headers stay free of jansson types (DESIGN.md section 2).
 */
#ifndef KEYWAVE_LIB_SIO_JSON_H
#define KEYWAVE_LIB_SIO_JSON_H

#include <jansson.h>

#include "keywave/sio.h"

/*
 * Same rules, result and errors as kw_sio_decode. payload may be NULL (then the parsed
 * value is freed, as kw_sio_decode does); otherwise *payload receives the parsed payload,
 * owned by the caller (json_decref): the array of an EVENT (event name at index 0) or ACK,
 * the object of a CONNECT or CONNECT_ERROR, NULL when the packet has none. On failure
 * *payload is NULL.
 */
KW_MUST_CHECK kw_err kw_sio_decode_json(const char *text, size_t len, kw_sio_packet *out,
                                        json_t **payload, kw_error *err);

#endif
