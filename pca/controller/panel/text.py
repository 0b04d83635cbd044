"""Every word the front panel shows, in one place: a translation or a wording review edits this.

The screen is 20 characters by 4 lines; a line longer than that is cut on the
screen, so keep each string (with its values filled in) to 20 characters.
Templates use str.format fields: `{ml}` is filled in by the flow that shows it.
Tuples are several lines of one message. Alarm, state and refusal *names*
(occlusion, running, ...) are keys, not text: the text for each is here.
"""

from __future__ import annotations

# ---- the home screen (what anyone walking up sees) -------------------------------------------
STATE_LABEL = {
    "unprogrammed": "NO PROGRAM",
    "stopped": "STOPPED",
    "running": "RUNNING",
    "kvo": "KVO",
    "pca_dose": "PCA DOSE",
    "clinician_dose": "CLIN BOLUS",
    "loading_dose": "LOADING",
    "intermittent_dose": "PROG BOLUS",
    "alarm": "ALARM STOP",
}
# Home screen: the alarm and what to do, in 20 characters.
ALARM_SHORT = {
    "occlusion": "OCCLUSION:check line",
    "air_in_line": "AIR IN LINE:re-prime",
    "reservoir_empty": "EMPTY: new syringe",
    "battery_depleted": "BATTERY FLAT:replace",
    "door_open": "DOOR OPEN: close it",
    "motor_fault": "MOTOR FAULT:service",
    "log_failure": "LOG FAULT: service",
    "self_test_failed": "SELF TEST: service",
    "reservoir_low": "RES LOW: get syringe",
    "battery_low": "BATTERY LOW:replace",
    "dose_limit_reached": "DOSE LIMIT: see Rx",
    "delivery_interrupted": "INTERRUPTED: restart",
    "button_stuck": "BUTTON STUCK:release",
    "spo2_low": "SpO2 LOW: PCA PAUSED",
    "etco2_high": "EtCO2 HIGH: PAUSED",
    "rr_low": "RESP LOW: PAUSED",
    "monitor_lost": "MONITOR LOST: check",
}
# Alarms screen: the full instruction.
ALARM_HELP = {
    "occlusion": "Line blocked. Open clamps, remove kinks, then clear the alarm (2).",
    "air_in_line": "Air in the line. Remove it and re-prime, then clear the alarm (2).",
    "reservoir_empty": "Syringe empty. Load a new syringe (menu 7); delivery is stopped.",
    "battery_depleted": "Battery flat: delivery stopped. Replace the battery, then clear.",
    "door_open": "Syringe door open: delivery stopped. Close and lock it, then clear.",
    "motor_fault": "Motor fault: delivery stopped. Take the pump out of use; call service.",
    "log_failure": "Event log cannot be written: delivery stopped. Call service.",
    "self_test_failed": "Self test failed: the pump will not deliver. Call service.",
    "reservoir_low": "Syringe nearly empty. Prepare a new syringe.",
    "battery_low": "Battery low. Replace or charge it soon.",
    "dose_limit_reached": "Dose limit reached: KVO until the window has room. Review the "
                          "patient and the prescription.",
    "delivery_interrupted": "Delivery was interrupted (restart). Check the patient and the "
                            "line, then start again (menu 1).",
    "button_stuck": "Bolus button held down. Release it or check the cord.",
    "spo2_low": "SpO2 below its limit: PCA and basal paused. Assess breathing and sedation "
                "now. Clear (2) once SpO2 is back, then start (1).",
    "etco2_high": "EtCO2 above its limit: PCA and basal paused. Assess breathing and "
                  "sedation now. Clear (2) once EtCO2 is back, then start (1).",
    "rr_low": "Breathing slow or stopped: PCA and basal paused. Assess the patient now. "
              "Clear (2) once the rate is back, then start (1).",
    "monitor_lost": "No readings from the breathing monitor. Check the sensor and cable; "
                    "where monitoring is required delivery is paused until it is back.",
}
ALARM_HELP_UNKNOWN = "See the manual."
ALARM_PRIORITY = "{priority}: {help}"  # priority in capitals: HIGH, MEDIUM, LOW

HOME_RATE = "{rate} mL/h"
HOME_NO_RX = "No prescription"
HOME_CONCENTRATION = " {conc} {unit}/mL"
HOME_RESERVOIR = "Res {ml:.1f} mL"
HOME_SILENCED = "SILENCED"
HOME_BATTERY = "{soc}% {h}h{m:02d}"  # state of charge and time remaining, on battery
HOME_BATTERY_SOC = "{soc}%"  # on battery, before a draw has been measured
HOME_MAINS = "AC"
HOME_MORE_ALARMS = "+{n} alarm"
HOME_RX_WAITING = "New Rx: PIN then #"
HOME_LIBRARY_WAITING = "New library: admin"
HOME_LOCKED = "Locked: PIN then #"
HOME_NEXT_PIB = "PIB {min}m"  # minutes to the next programmed intermittent bolus
ROUTE_SHORT = {"iv": "IV", "epidural": "EPI", "subcutaneous": "SC"}

DISPLAY_FAULT = ("DISPLAY FAULT", "Delivery is not", "affected. Call", "service.")

# ---- widgets ---------------------------------------------------------------------------------
KEY_OK = "ok"
KEY_BACK = "back"
PAGES_LAST = "*={back}"
PAGES_ENTER = "#={enter} *={back}"
PAGES_NEXT = "#=next *={back}"
MENU_PAGE = "{title} {page}/{pages}"
MENU_TAIL_PAGED = "#more *lock"
MENU_TAIL = "*=lock"
PIN_MASK = "PIN: {stars}"
PIN_FOOT = "#=enter *=clear"
PIN_FOOT_EMPTY = "#=enter *=back"
PIN_LENGTH = "PIN is {low}-{high} digits"
NUMBER_EMPTY = "_"
NUMBER_SHOWN = "{value} {unit}"
NUMBER_FOOT = "#=ok *=del/back"
NUMBER_MISSING = "type an amount"
UNIT_ML = "mL"
REFUSED_HEAD = "REFUSED:"
REFUSED_UNKNOWN = "refused"
REFUSED_PIN_WAIT = "PIN locked: wait {s} s"

# ---- unlock ----------------------------------------------------------------------------------
UNLOCK_TITLE = "ENTER PIN"
UNLOCK_ADMIN_TITLE = "ADMIN PIN (service)"
UNLOCK_ADMIN_NOTE = "PIN reset, drug lib"  # what the admin may do: never therapy
PIN_NOTE_STORE = "PIN store: see log"
PIN_NOTE_NONE = "No PIN set yet"
PIN_NOTE_WAIT = "Wait {s} s"
WRONG_PIN = "Wrong PIN"
WRONG_PIN_WAIT = "Wrong PIN: wait {s}s"

# Keys that answer nothing in an open session (a PIN typed again, a slip): nothing is done.
STRAY_TYPING = ("ALREADY UNLOCKED", "Keys not used:", "nothing changed", "#/* = menu")
STRAY_DONE = ("ALREADY UNLOCKED", "No PIN needed now.", "Keys not used:", "nothing changed")

# ---- the patient's bolus button: the answer to every press --------------------------------
# Shown on the home screen for a few seconds, with the information tone and the green lamp.
# Plain words only: the reason codes (lockout, max_per_hour, ...) are for the clinician.
PRESS_GRANTED = ("DOSE STARTING NOW", "")
PRESS_NOT_NOW = "NOT NOW"
PRESS_WAIT_MIN = "Next dose in {min} min"
PRESS_WAIT_SOON = "Next dose in <1 min"
PRESS_RUNNING = "Dose still running"
PRESS_ASK = "Ask your nurse"

# ---- menus (labels are 8 characters at most: two items to a line) ----------------------------
MENU_TITLE = "MENU"
ADMIN_TITLE = "ADMIN"
LABEL = {
    "start": "Start",
    "stop": "Stop",
    "bolus": "Bolus",
    "loading": "Loading",
    "view_rx": "View Rx",
    "history": "History",
    "alarms": "Alarms",
    "syringe": "Syringe",
    "new_patient": "New pt",
    "change_pin": "Chg PIN",
    "new_rx": "New Rx",
    "new_rx_waiting": "New Rx!",
    "reset_clinician_pin": "Clin PIN",
    "admin_pin": "Adm PIN",
    "library": "Library",
}

# ---- start, stop, clinician bolus, loading dose ----------------------------------------------
START_TITLE = "START DELIVERY?"
START_BASAL = "Basal {ml_h} mL/h"
START_KEY = "start"
START_NO_RX = ("No prescription:", "load one (menu 0)")
START_ALARM = ("Alarm: clear it", "first (menu 6)")
STOP_LINES = ("STOP DELIVERY?", "Basal and PCA stop")
STOP_RATE = "Now {ml_h} mL/h"
STOP_KEY = "stop"
STARTED = "Delivery started"
STOPPED = "Delivery stopped"

BOLUS_NOT_RUNNING = ("A clinician bolus", "needs the pump", "running")
BOLUS_NONE_ALLOWED = ("This Rx allows no", "clinician bolus")
BOLUS_TITLE = "CLINICIAN BOLUS"
BOLUS_MAX = "max {cap} {unit}"
BOLUS_ABOVE_MAX = "above max {cap} {unit}"
BOLUS_CONFIRM = "GIVE BOLUS?"
AMOUNT_BOTH = "{amount} {unit} = {ml} mL"
DRUG_CONCENTRATION = "{drug} {conc}{unit}/mL"
DRUG_AND_CONCENTRATION = "{drug} {conc} {unit}/mL"
GIVE_KEY = "give"
BOLUS_STARTED = "Bolus started"

LOADING_NOT_RUNNING = ("A loading dose", "needs the pump", "running")
LOADING_NONE = ("This Rx has no", "loading dose")
LOADING_CONFIRM = "GIVE LOADING DOSE?"
LOADING_STARTED = "Loading dose started"

# ---- prescription: view, review a pharmacy file, activate ------------------------------------
RX_NONE_ACTIVE = ("No prescription", "is active")
RX_ACTIVE_TITLE = "ACTIVE PRESCRIPTION"
RX_OVERRIDES_HEAD = "Overrides:"
RX_LIBRARY = "Lib {version}"
RX_CONCENTRATION = "{conc} {unit}/mL"
RX_PCA_DOSE = "PCA dose"
RX_BASAL = "Basal/h"
RX_LIMIT = "Limit/{window_h}h"
RX_NO_LIMIT = "Limit   none"
RX_LOADING = "Loading"
RX_CLIN_MAX = "ClinMax"
RX_LOCKOUT = "Lockout {min} min"
RX_PIB_DOSE = "Prog bol"  # programmed intermittent bolus (SR-12)
RX_PIB_EVERY = "Every {every} 1st {first} min"
RX_PIB_RESET = "PCA delays next PIB"
RX_MAX_PCA = "Max PCA/h {n}"
RX_MAX_PCA_NONE = "no limit"
RX_ENTERED_IN = "Entered in {unit}"
RX_OVERRIDES = "Overrides: {n}"
RX_NO_OVERRIDES = "No overrides"
RX_MONITOR_TITLE = "Monitor {kind}"
RX_MONITOR_REQUIRED = "REQUIRED"
RX_MONITOR_OPTIONAL = "optional"
RX_MONITOR_LIMIT = {"spo2_min": "Pause SpO2 < {value} %", "etco2_max_mmhg":
                    "Pause EtCO2>{value}mmHg", "rr_min": "Pause RR < {value}/min"}
RX_MONITOR_TIMES = "after {delay}s lost {stale}s"

RX_NO_FILE = ("No Rx file waiting", "(pca rx load, or", "a USB stick)")
RX_NEW_TITLE = "NEW RX {rx_id}"
RX_REJECTED = ("Prescription", "rejected: nothing", "changed")
RX_REFUSED = "RX REFUSED"
DISMISS_KEY = "dismiss"
RX_FILE = "File {name}"
RX_ACTIVATE = "ACTIVATE THIS RX?"
RX_ACTIVATE_PIN = "(then your PIN)"
RX_REJECT = ("REJECT THIS RX?", "File {name}", "It is dropped.")
REJECT_KEY = "reject"
YES_KEY = "yes"
LATER_KEY = "later"
REJECT_HINT = "0=rej"
RX_SOFT_HEAD = "SOFT LIMITS: {n}"
RX_OVERRIDE = ("OVERRIDE SOFT", "LIMITS? (logged)", "")
OVERRIDE_KEY = "override"
NO_KEY = "no"
RX_ACTIVATED = ("Prescription", "ACTIVE", "Start: menu 1")
RX_WRONG_PIN = ("Wrong PIN:", "not activated")
RX_PIN_TITLE = "PIN TO ACTIVATE RX"

# ---- dose history ----------------------------------------------------------------------------
HISTORY_TITLE = "HISTORY: LAST HOURS"
HISTORY_UNIT = "h"
HISTORY_RANGE = "1 to {max_h} h"
HISTORY_HEAD = "LAST {hours} H"
HISTORY_GIVEN = "PCA given   {n}"
HISTORY_TRIED = "PCA tried   {n}"
HISTORY_COLUMNS = ("h ago", "given", "tried")
HISTORY_HOURS_AGO = "{k}-{k1}"
HISTORY_DEFAULT_UNIT = "mg"
HISTORY_SOURCE = {
    "pca": "Pca",
    "basal": "Basal",
    "clinician": "Clinicia",
    "loading": "Loading",
    "kvo": "Kvo",
    "intermittent": "Prog bol",
}
HISTORY_TOTAL = "Total"
HISTORY_PIB_HEAD = "PROG BOLUS (PIB)"
HISTORY_PIB_GIVEN = "PIB given   {n}"
HISTORY_PIB_SKIPPED = "PIB skipped {n}"

# ---- alarms ----------------------------------------------------------------------------------
ALARMS_NONE = ("NO ACTIVE ALARMS", "", "", "*=back")
ALARMS_HEAD = "{n}/{of} {name}"
ALARMS_FOOT = "1=silnc 2=clr #=next"
NO_ALARM_TO_SILENCE = "No alarm to silence"
SILENCED = ("Alarm silenced", "for 2 minutes", "(not cleared)")
NO_ALARM_TO_CLEAR = "No alarm to clear"
CLEAR_CONFIRM = "CLEAR ALARMS?"
CLEAR_WHICH = "if the cause is gone"
CLEAR_KEY = "clear"
CLEARED = "Alarms cleared"

# ---- syringe and patient ---------------------------------------------------------------------
SYRINGE_STOP_FIRST = ("Stop the pump", "before changing", "the syringe (1)")
SYRINGE_RANGE = "0.1 to {max_ml} mL"
SYRINGE_LOADED = "Syringe {ml} mL"
SYRINGE_CONFIRM = "LOAD NEW SYRINGE?"
SYRINGE_VOLUME = "Volume {ml} mL"
SYRINGE_RESETS = "Reservoir resets"
LOAD_KEY = "load"
SYRINGE_TITLE = "NEW SYRINGE VOLUME"
SYRINGE_MAX = "max {max_ml} mL"

PATIENT_STOP_FIRST = ("Stop the pump and", "clear alarms before", "a new patient")
PATIENT_DONE = "New patient: no Rx"
PATIENT_CONFIRM = ("NEW PATIENT?", "Clears Rx, history,", "lockout and limits")

# ---- PINs ------------------------------------------------------------------------------------
PINS_DIFFER = ("PINs differ:", "nothing changed")
PIN_CHANGED = ("{role} PIN", "changed")
PIN_NOT_CHANGED = "NOT CHANGED:"
PIN_REPEAT = "REPEAT NEW PIN"
PIN_NEW = "NEW PIN {low}-{high} DIGITS"
PIN_CURRENT = "CURRENT PIN"
ROLE_NAME = {"clinician": "Clinician", "admin": "Admin"}
CLIN_PIN_SET = "Clinician PIN set"
PIN_NOT_SET = "NOT SET:"
CLIN_PIN_REPEAT = "REPEAT CLINICIAN PIN"
CLIN_PIN_NEW = "NEW CLINICIAN PIN"

# ---- drug library (admin) --------------------------------------------------------------------
LIB_TITLE = "DRUG LIBRARY"
LIB_VERSION = "v {version}"
LIB_NO_CHECKSUM = "no checksum"
LIB_NONE_WAITING = ("No new library", "waiting", "")
LIB_DISMISSED = ("New library", "dismissed")
LIB_REFUSED = "NEW LIBRARY REFUSED"
LIB_CURRENT_STAYS = "Current one stays."
LIB_NEW = "NEW LIBRARY"
LIB_CHECKSUM_OK = "checksum OK"
LIB_INSTALL = "INSTALL IT?"
LIB_REPLACES = "replaces v {version}"
LIB_THEN_PIN = "(then admin PIN)"
LIB_INSTALLED = "Library installed"
LIB_NOT_INSTALLED = "NOT INSTALLED:"
LIB_PIN_TITLE = "ADMIN PIN TO INSTALL"
INSTALL_KEY = "install"
