"""A fake Twilio for the IVR: places calls to the same Flask app, plays Twilio's part, on a virtual clock.

    transport     how requests reach the app (a direct in-process WSGI call, or HTTP), signed like Twilio
    fake_twilio   one call: requests, TwiML documents, the status callback
    verbs, gather, record, enqueue, dial    the TwiML verbs, as Twilio documents them
    clock, legs, media, transcript          virtual time, call SIDs and parameters, prompt lengths, what was heard
    actions, callers, typed, script_caller  what the caller does: typed by a person, or following a script
    script, expect, runner                  caller scripts (YAML), their checks, running them (`ivr test`;
                                            InProcessRun: each flow loaded and each app created once per run)
    replay        re-driving logged calls against the current flow (`ivr replay`)
    commands      the CLI commands simulate, test and replay
"""
